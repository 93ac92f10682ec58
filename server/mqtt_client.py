"""paho's MQTT client, reading the socket in large chunks.

paho reads every packet with at least three ``recv`` calls (the type byte, the length
bytes one at a time, then the body) and goes back to ``select`` after each packet. A
subscriber receiving thousands of small messages a second spent most of its network
thread in those system calls. This client takes whatever the socket holds (up to
256 KiB) into a buffer, serves paho's small reads from it, and keeps handing packets to
paho while the buffer has any, so a burst of messages costs a few system calls, not
four per message. Everything else is paho's own.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

CHUNK = 256 * 1024


class BufferedClient(mqtt.Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._chunk = b""
        self._offset = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._offset >= len(self._chunk):
            data = super()._sock_recv(CHUNK)  # raises BlockingIOError when nothing waits
            if not data:
                return data  # connection closed: paho sees it as such
            self._chunk, self._offset = data, 0
        start = self._offset
        self._offset = min(len(self._chunk), start + bufsize)
        return self._chunk[start : self._offset]

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        wake, self._sockpairW = self._sockpairW, None  # (see the module's docstring)
        try:
            rc = super().loop_read(max_packets)
            # packets already in the buffer would wait for the next select() otherwise
            while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._offset < len(self._chunk):
                rc = super().loop_read(max_packets)
        finally:
            if self._sockpairW is None:  # unless paho made new sockets meanwhile
                self._sockpairW = wake
        return rc

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        """Consecutive PUBACKs at the head of the queue leave as one packet (only this
        thread takes from the queue's head; others append at its tail)."""
        queue = self._out_packet
        acks = []
        while queue and (queue[0]["command"] & 0xF0) == mqtt.PUBACK and queue[0]["pos"] == 0:
            acks.append(queue.popleft())
        if len(acks) > 1:
            merged = dict(acks[0])
            merged["packet"] = b"".join(bytes(a["packet"]) for a in acks)
            merged["to_process"] = len(merged["packet"])
            acks = [merged]
        queue.extendleft(acks)
        return super()._packet_write()

    def _reset_sockets(self, sockpair_only: bool = False) -> None:
        if not sockpair_only:  # a new connection must not see the old one's bytes
            self._chunk, self._offset = b"", 0
        super()._reset_sockets(sockpair_only)
