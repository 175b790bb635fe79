terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: bucket, key, region and dynamodb_table (or use_lockfile) are passed at
  # init time, e.g. `terraform init -backend-config=vars/dev.backend.hcl`
  # (see vars/dev.backend.hcl.template).
  backend "s3" {}
}
