-- The VPC endpoint a call came through and the account that owns it
-- (issue 29): a call through a VPC endpoint carries a private source address
-- the caller may have chosen to overlap the company's ranges, so no rule
-- built on source addresses trusts it unless the endpoint's account is listed.
ALTER TABLE events ADD COLUMN vpc_endpoint TEXT;
ALTER TABLE events ADD COLUMN vpc_endpoint_account TEXT;
