# churn-model-alerts: model alerts of the batch-monitor flow and the operational alarms below.
module "alerts" {
  source = "./modules/sns_topic"

  name            = local.alert_topic_name
  kms_key_arn     = aws_kms_key.main.arn
  email_addresses = var.alert_emails
}

locals {
  alarm_actions = [module.alerts.arn]

  dead_letter_queues = {
    file_drops    = module.file_drops_queue.dead_letter_queue_name
    stream_scorer = module.scorer_dlq.name
  }

  functions = {
    producer      = module.producer.function_name
    stream_scorer = module.stream_scorer.function_name
  }
}

resource "aws_cloudwatch_metric_alarm" "stream_iterator_age" {
  alarm_name          = "${local.prefix}-stream-iterator-age"
  alarm_description   = "Records wait on ${local.stream_name} longer than ${var.iterator_age_alarm_threshold_ms} ms: the scorer is falling behind or failing."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = module.stream.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_threshold_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "scorer_iterator_age" {
  alarm_name          = "${local.prefix}-stream-scorer-iterator-age"
  alarm_description   = "The newest record of a batch the scorer received was older than ${var.iterator_age_alarm_threshold_ms} ms."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = module.stream_scorer.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_threshold_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.dead_letter_queues

  alarm_name          = "${local.prefix}-${replace(each.key, "_", "-")}-dlq-depth"
  alarm_description   = "Messages are waiting in the dead-letter queue ${each.value}: inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.dlq_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${local.prefix}-${replace(each.key, "_", "-")}-errors"
  alarm_description   = "Invocations of ${each.value} failed (they are retried; persistent failures end in a dead-letter queue)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
