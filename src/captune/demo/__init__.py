"""The embedded demo: the procedural shapes world (``captune.demo.world``) that lets every
captune stage run with no downloaded data or weights."""
