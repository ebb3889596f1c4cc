"""The device service (`edge serve`): a Baidu face v3 compatible HTTP API, Server-Sent Events
and an admin page with a live view, in one process with the camera loop.

Needs the ``serve`` extra (``pip install 'edge-face[serve]'``: FastAPI, uvicorn, Jinja2,
python-multipart).
"""
