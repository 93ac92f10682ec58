"""pygeoapi plugins over the shikong catalog (named by dotted path in the config)."""
