"""Webhooks: endpoints, events from the streams, fan-out to SQS, signed delivery."""
