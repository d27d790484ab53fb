"""The monitoring engine's runtime: the scheduler (runner), shard leases,
the batched writer, check specs and their execution, the state machine,
its statistics and retention. The domain (monitors, rollups, history,
quorum, push and agents) lives beside it in `monitoring/`."""
