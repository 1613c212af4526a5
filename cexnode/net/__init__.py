"""Networking: WebSocket feeds (``ws.py``) and the REST client (``rest.py``).

Interim transport: both run on aiohttp. The picows zero-copy listener (``_core/listener``) named in
DESIGN §1 is not built yet; frames are handed to the Cython parsers as bytes (one copy per frame).
"""
