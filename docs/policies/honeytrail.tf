# honeytrail's roles in the canary account, with the policies of
# docs/policies/*.json (generated from the code; a test keeps them equal).
# Copy this directory into your Terraform code, set who may assume each
# role, and run `honeytrail aws bootstrap` once as the bootstrap role.
#
# The JSON files use honeytrail's default names (bucket
# cloudtrail-<account>-us-east-1, trail account-trail, queues
# cloudtrail-log-files / cloudtrail-api-calls, rule cloudtrail-api-calls,
# group service-accounts, boundary baseline-boundary, home region
# us-east-1). With other names, regenerate them for your configuration:
#   honeytrail aws policy mint --account 123456789012 > mint.json
# and use file() instead of templatefile().

variable "bootstrap_principals" {
  description = "ARNs allowed to assume the bootstrap role (the people who set up detection)"
  type        = list(string)
}

variable "mint_principals" {
  description = "ARNs allowed to assume the mint role (the honeytrail server's identity)"
  type        = list(string)
}

variable "ingest_principals" {
  description = "ARNs allowed to assume the ingest role (the honeytrail server's identity)"
  type        = list(string)
}

variable "decoys_principals" {
  description = "ARNs allowed to assume the decoys role (the people who run `honeytrail decoy`); none: no role"
  type        = list(string)
  default     = []
}

data "aws_caller_identity" "canary" {}

locals {
  honeytrail_jobs = merge({
    bootstrap = var.bootstrap_principals
    mint      = var.mint_principals
    ingest    = var.ingest_principals
  }, length(var.decoys_principals) > 0 ? { decoys = var.decoys_principals } : {})
}

resource "aws_iam_policy" "honeytrail" {
  for_each = local.honeytrail_jobs
  name     = "honeytrail-${each.key}"
  policy = templatefile("${path.module}/${each.key}.json", {
    account_id = data.aws_caller_identity.canary.account_id
  })
}

resource "aws_iam_role" "honeytrail" {
  for_each = local.honeytrail_jobs
  name     = "honeytrail-${each.key}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { AWS = each.value }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "honeytrail" {
  for_each   = local.honeytrail_jobs
  role       = aws_iam_role.honeytrail[each.key].name
  policy_arn = aws_iam_policy.honeytrail[each.key].arn
}

output "honeytrail_role_arns" {
  value = { for job, role in aws_iam_role.honeytrail : job => role.arn }
}
