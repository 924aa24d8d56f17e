"""The bottom layer: one process, free loopback ports, the binaries, a loopback TCP proxy."""
