"""The queue machinery: broker, streams, retries, dispatch, worker and scheduler entry points.

The API imports only the sending half (``queues``, ``factory``, ``dispatch``); task modules live
one level up, one per domain.
"""
