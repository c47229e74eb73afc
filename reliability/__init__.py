"""Reliability tooling: a second SQS implementation (fauxqs) and a fault-injecting proxy."""
