"""Domain operations. Each service works inside a unit of work: it flushes, never commits."""
