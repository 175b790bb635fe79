# ---------------------------------------------------------------------------------------------------
# producer: SQS (S3 events) -> split rows -> KPL-aggregated PutRecords on the stream
# ---------------------------------------------------------------------------------------------------

# What producer/file_processor.py calls, and nothing else (tests/unit/infra/test_producer_policy.py keeps the
# two in step). The event source mapping needs ReceiveMessage, DeleteMessage and GetQueueAttributes.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "ConsumeFileDrops"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [module.file_drops_queue.arn]
  }

  # A file too long for one invocation is handed on to the next through the same queue.
  statement {
    sid       = "HandOnLongFiles"
    actions   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [module.file_drops_queue.arn]
  }

  # The version an event names is read, copied (tags included) and deleted; a newer upload is never touched.
  statement {
    sid = "ReadAndRemoveDroppedVersions"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectTagging",
      "s3:GetObjectVersionTagging",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
    ]
    resources = ["${module.data_bucket.arn}/${local.prefixes.input}*"]
  }

  statement {
    sid     = "WriteRejectsManifestsAndMovedFiles"
    actions = ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload"]
    resources = [
      for prefix in ["rejected", "manifests", "processed", "errored"] : "${module.data_bucket.arn}/${local.prefixes[prefix]}*"
    ]
  }

  # An event without a version id names content (ETag): the version holding it is looked up by listing.
  statement {
    sid       = "FindDroppedVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [module.data_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefixes.input}*"]
    }
  }

  # A redelivered notification finds the manifest of its version by listing, then reads it.
  statement {
    sid       = "ReadManifests"
    actions   = ["s3:GetObject"]
    resources = ["${module.data_bucket.arn}/${local.prefixes.manifests}*"]
  }

  statement {
    sid       = "ListManifests"
    actions   = ["s3:ListBucket"]
    resources = [module.data_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefixes.manifests}*"]
    }
  }

  statement {
    sid       = "PutRecords"
    actions   = ["kinesis:PutRecords", "kinesis:ListShards"]
    resources = [module.stream.arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

module "producer" {
  source = "./modules/lambda_function"

  function_name                  = "${local.prefix}-producer"
  description                    = "Splits CSV files dropped under ${local.prefixes.input} into customer records on ${local.stream_name}"
  image_uri                      = local.images["producer"]
  memory_size                    = var.producer_memory_mb
  timeout                        = local.producer_timeout_seconds
  reserved_concurrent_executions = var.producer_reserved_concurrency
  policy_json                    = data.aws_iam_policy_document.producer.json
  subnet_ids                     = module.network.private_subnet_ids
  security_group_ids             = [aws_security_group.this["producer"].id]
  kms_key_arn                    = aws_kms_key.main.arn
  log_retention_days             = var.log_retention_days

  environment = merge(
    { for key in ["CHURN_BUCKET", "KINESIS_STREAM", "FILE_DROPS_QUEUE", "INPUT_PREFIX", "REJECTED_PREFIX", "MANIFEST_PREFIX", "PROCESSED_PREFIX", "ERRORED_PREFIX"] : key => local.common_environment[key] },
    { LOCAL_STATE_DIR = "/tmp/churn" },
  )
}

resource "aws_lambda_event_source_mapping" "producer" {
  function_name                      = module.producer.arn
  event_source_arn                   = module.file_drops_queue.arn
  batch_size                         = local.producer_mapping.batch_size
  maximum_batching_window_in_seconds = local.producer_mapping.maximum_batching_window_in_seconds
  function_response_types            = local.producer_mapping.function_response_types
}

# ---------------------------------------------------------------------------------------------------
# stream_scorer: Kinesis -> deaggregate -> predict (MLflow registry alias) -> Postgres
# ---------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "stream_scorer" {
  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListShards",
    ]
    resources = [module.stream.arn]
  }

  statement {
    sid       = "SendFailedBatchesToDlq"
    actions   = ["sqs:SendMessage"]
    resources = [module.scorer_dlq.arn]
  }

  statement {
    sid       = "ReadDatabaseCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.database_secret_arn]
  }

  # The pipeline's MLflow login, read at cold start (churn_common/mlflow_credentials.py).
  statement {
    sid       = "ReadMlflowCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.mlflow_pipeline_secret_arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

module "stream_scorer" {
  source = "./modules/lambda_function"

  function_name                  = "${local.prefix}-stream-scorer"
  description                    = "Scores customer records of ${local.stream_name} with ${var.model_name}@${var.model_alias}"
  image_uri                      = local.images["stream_scorer"]
  memory_size                    = var.scorer_memory_mb
  timeout                        = var.scorer_timeout_seconds
  reserved_concurrent_executions = var.scorer_reserved_concurrency
  policy_json                    = data.aws_iam_policy_document.stream_scorer.json
  subnet_ids                     = module.network.private_subnet_ids
  security_group_ids             = [aws_security_group.this["stream_scorer"].id]
  kms_key_arn                    = aws_kms_key.main.arn
  log_retention_days             = var.log_retention_days

  # DATABASE_URL is assembled at cold start from DATABASE_SECRET_ARN and the DATABASE_* parts (see
  # infra/docker/entrypoint.py), and the MLflow login is read from MLFLOW_CREDENTIALS_SECRET_ARN, so no
  # password is stored in the function's configuration.
  environment = merge(
    { for key in ["CHURN_BUCKET", "KINESIS_STREAM", "MLFLOW_TRACKING_URI", "MODEL_NAME", "MODEL_ALIAS", "MODEL_REFRESH_SECONDS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK"] : key => local.common_environment[key] },
    local.database_environment,
    {
      DATABASE_SECRET_ARN           = local.database_secret_arn
      MLFLOW_CREDENTIALS_SECRET_ARN = local.mlflow_pipeline_secret_arn
      LOCAL_STATE_DIR               = "/tmp/churn"
    },
  )
}

resource "aws_lambda_event_source_mapping" "stream_scorer" {
  function_name                      = module.stream_scorer.arn
  event_source_arn                   = module.stream.arn
  batch_size                         = local.scorer_mapping.batch_size
  maximum_batching_window_in_seconds = local.scorer_mapping.maximum_batching_window_in_seconds
  starting_position                  = local.scorer_mapping.starting_position
  bisect_batch_on_function_error     = local.scorer_mapping.bisect_batch_on_function_error
  maximum_retry_attempts             = local.scorer_mapping.maximum_retry_attempts
  maximum_record_age_in_seconds      = local.scorer_mapping.maximum_record_age_in_seconds
  parallelization_factor             = local.scorer_mapping.parallelization_factor
  function_response_types            = local.scorer_mapping.function_response_types

  destination_config {
    on_failure {
      destination_arn = module.scorer_dlq.arn
    }
  }
}

# Constraints between the mappings file and the variables, checked at plan time.
resource "terraform_data" "mapping_constraints" {
  input = {
    producer_timeout   = local.producer_timeout_seconds
    visibility_timeout = local.producer_mapping.visibility_timeout_seconds
  }

  lifecycle {
    precondition {
      condition     = local.producer_timeout_seconds <= local.producer_mapping.visibility_timeout_seconds
      error_message = "producer_timeout_seconds must not exceed the file-drops visibility timeout of infra/event_source_mappings.json."
    }

    precondition {
      condition     = var.kinesis_stream_mode == "ON_DEMAND" || var.scorer_reserved_concurrency >= var.kinesis_shard_count * local.scorer_mapping.parallelization_factor
      error_message = "scorer_reserved_concurrency must be at least kinesis_shard_count x parallelization_factor, or some shards are never read."
    }
  }
}
