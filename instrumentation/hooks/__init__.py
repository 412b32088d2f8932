"""The hook points on the openai SDK, one module per seam.

- ``state``: what every hook shares (the active config, the call in flight, the helper in use).
- ``wrapping``: the sync/async wrapper shapes (around, before, on-raise), written once.
- ``requests``: ``request`` / ``_process_response`` / retry hooks: one call or poll span per SDK call.
- ``streams``: ``__stream__`` / ``_iter_events``: every stream event once, the ``[DONE]`` marker.
- ``exits``: ``close`` / ``__exit__`` / GC: how a stream the app stopped reading ended.
- ``helpers``: the chat/responses/assistants stream managers and their ``get_final_*``.
- ``polls``: polling helpers, one call span per loop.

``instrumentation/patches.py`` is the registry that installs them on the SDK's classes.
"""
