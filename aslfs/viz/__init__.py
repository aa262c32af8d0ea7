"""Looking at the data: drawing sequences and handshapes with Pillow (see :mod:`aslfs.viz.render`)."""
