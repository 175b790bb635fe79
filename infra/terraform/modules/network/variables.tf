variable "name" {
  description = "Name prefix of the network resources."
  type        = string
}

variable "cidr_block" {
  description = "CIDR block of the VPC; /24 subnets are carved out of it (public: netnum 0.., private: netnum 100..)."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones (names) of the subnets, one public and one private subnet in each."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway shared by all private subnets instead of one per availability zone."
  type        = bool
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group in days."
  type        = number
}
