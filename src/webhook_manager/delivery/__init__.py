"""Events to webhooks on the wire: the pure rules (batching, payload, signing, retry) beside the loops that use
them (batcher, dispatcher, egress, purger), started together by :class:`~webhook_manager.delivery.pipeline.Pipeline`."""
