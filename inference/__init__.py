"""Pure inference: bytes and arrays in, arrays out.

Nothing here imports the database, asyncio, the settings or any other package of ours; only
the worker imports this package (the API never does, which a test checks). onnxruntime is
imported when a model is first loaded.
"""
