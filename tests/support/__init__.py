"""What the tests share, apart from fixtures (those are in tests/conftest.py).

- :mod:`.helpers`: the test endpoint, ``wait_for`` and small SQS queries.
- :mod:`.handlers`: message handlers used by many test files (``Echo`` and its variants).
- :mod:`.faultproxy`: a fault-injecting HTTP proxy between SQS clients and the SQS server.
- :mod:`.latency_proxy`: a proxy that adds network-like latency (the benchmarks' aws-like
  profile).
- :mod:`.sqs_process`: moto's server in a process of its own (tests, tools and benchmarks).
- :mod:`.fauxqs`: fauxqs, the second SQS implementation, installed from npm and run.
- :mod:`.recording_server`, :mod:`.extended_client_peer`: programs the tests run as
  subprocesses.
"""
