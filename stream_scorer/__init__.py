"""Kinesis consumer: deaggregate, validate and score a batch of customer records in one pass."""
