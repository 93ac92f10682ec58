"""The platform's own pages: the static assets every page loads, served from the server.

The government intranet has no internet, so no page may load anything from a CDN; every
script, style and icon is under ``server/static/`` (vendored libraries with their
licences in ``static/vendor/``) and served at ``/static`` by :mod:`.api`.
"""
