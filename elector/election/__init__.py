"""The pure election: the elector loop, one attempt, the Lease record and lock protocol, clock, hints,
seen, handover, the election config and timings. No I/O: the lock is a protocol others implement."""
