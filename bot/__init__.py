"""Coach: a learning-coach chat service for K-12 learners, families and teachers."""

__version__ = "0.1.0"
