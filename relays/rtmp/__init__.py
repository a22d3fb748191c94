"""RTMP(S) publishing, sans-I/O: the handshake and commands (:mod:`relays.rtmp.session`),
chunk streams (:mod:`relays.rtmp.chunks`), AMF0 values (:mod:`relays.rtmp.amf0`) and the
FLV tags RTMP carries (:mod:`relays.rtmp.flv`, :mod:`relays.rtmp.flv_tags`). The socket
under it is :mod:`relays.link`, driven by :mod:`relays.publisher`."""
