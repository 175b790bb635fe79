# file-drops (+ file-drops-dlq): S3 ObjectCreated events for the producer. Visibility timeout and
# redrive come from infra/event_source_mappings.json.
module "file_drops_queue" {
  source = "./modules/sqs_queue"

  name                       = local.file_drops_queue_name
  kms_key_arn                = aws_kms_key.main.arn
  visibility_timeout_seconds = local.producer_mapping.visibility_timeout_seconds

  dead_letter_queue = {
    name              = local.file_drops_dlq_name
    max_receive_count = local.producer_mapping.max_receive_count
  }
}

data "aws_iam_policy_document" "file_drops_queue" {
  statement {
    sid       = "DataBucketSendsObjectCreatedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [module.file_drops_queue.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [module.data_bucket.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "file_drops" {
  queue_url = module.file_drops_queue.url
  policy    = data.aws_iam_policy_document.file_drops_queue.json
}

# stream-scorer-dlq: on-failure destination of the scorer's event source mapping (metadata of the
# batches that exhausted their retries or record age).
module "scorer_dlq" {
  source = "./modules/sqs_queue"

  name                      = local.scorer_dlq_name
  kms_key_arn               = aws_kms_key.main.arn
  message_retention_seconds = 1209600
}

module "stream" {
  source = "./modules/kinesis_stream"

  name                   = local.stream_name
  stream_mode            = var.kinesis_stream_mode
  shard_count            = var.kinesis_shard_count
  retention_period_hours = var.kinesis_retention_hours
  kms_key_arn            = aws_kms_key.main.arn
}
