"""The ``sqs-rpc`` command line: ``main()`` in ``main.py``, one module per command group."""
