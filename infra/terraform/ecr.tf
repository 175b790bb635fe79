# Image repositories; CD pushes images tagged with the commit SHA (tags are immutable).
resource "aws_ecr_repository" "this" {
  for_each = toset(local.image_repositories)

  name                 = "${local.prefix}/${replace(each.key, "_", "-")}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

# Lambda pulls function images with its service principal, for this account's functions only.
data "aws_iam_policy_document" "ecr_lambda_pull" {
  statement {
    sid     = "LambdaPullsFunctionImages"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = ["arn:${local.partition}:lambda:${var.aws_region}:${local.account_id}:function:*"]
    }
  }
}

resource "aws_ecr_repository_policy" "lambda" {
  for_each = toset(["producer", "stream_scorer"])

  repository = aws_ecr_repository.this[each.key].name
  policy     = data.aws_iam_policy_document.ecr_lambda_pull.json
}
