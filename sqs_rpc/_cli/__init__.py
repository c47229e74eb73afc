"""The ``sqs-rpc`` command line: ``main()``, its exit codes, and one module per command group."""
