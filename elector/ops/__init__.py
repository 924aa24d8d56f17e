"""Operations: counters and their exposition, process metrics, JSON logs."""
