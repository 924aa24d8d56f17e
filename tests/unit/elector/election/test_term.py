"""A term's claim runs from the send time of its last good write, and ends whole."""
from elector.election import config, term


def test_a_claim_runs_a_renew_deadline_from_the_send_time_and_ends_whole():
    cfg = config.ElectionConfig("e", "ns", "a", lease_duration=15, renew_deadline=10, retry_period=2)
    t = term.Term()
    assert not t.claims(0.0)
    t.begin(3, "rv-7", sent=100.0, config=cfg)
    assert t.claims(109.9) and not t.claims(110.0)
    assert (t.number, t.fencing_token, t.next_renew) == (3, "rv-7", 106.0)  # two fifths of the lease
    t.renewed(sent=106.0, config=cfg)
    assert t.claims(115.9) and t.next_renew == 112.0
    t.resigning = True
    assert not t.claims(106.0)  # stopped claiming, the Lease may still name us
    t.end()
    assert (t.leading, t.number, t.fencing_token) == (False, None, None)
