"""File-drop producer: split CSV drops into validated customer records and put them on the stream."""

from churn_common.public_api import lazy_exports

_EXPORTS = {
    "FileProcessor": "producer.file_processor",
    "KinesisWriter": "producer.kinesis_writer",
    "Manifest": "producer.manifest",
    "ValidRow": "producer.splitter",
    "WriteStats": "producer.kinesis_writer",
    "customer_record": "producer.records",
    "find_manifest": "producer.manifest",
    "lambda_handler": "producer.handler",
    "manifest_key": "producer.locations",
    "split_csv": "producer.splitter",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
