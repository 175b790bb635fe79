"""Who signs a call: the acting principal's key, in the caller's thread and in contexts copied from it;
and the emulator's copy of a policy only widens what the exact one grants."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.policy_documents import for_emulator
from infra.local.principals import OPERATOR, AccessKey, PrincipalCredentials, acting_as

KEYS = {
    OPERATOR: AccessKey(access_key_id="AKIAOPERATOR", secret_access_key="s-operator"),
    "producer": AccessKey(access_key_id="AKIAPRODUCER", secret_access_key="s-producer"),
}


@pytest.fixture
def credentials() -> PrincipalCredentials:
    made = PrincipalCredentials()
    made.use(KEYS)
    return made


def test_a_call_is_signed_with_the_key_of_the_principal_its_context_acts_as(credentials) -> None:
    assert credentials.get_frozen_credentials().access_key == "AKIAOPERATOR"
    with acting_as("producer"):
        assert credentials.get_frozen_credentials().access_key == "AKIAPRODUCER"
        with ThreadPoolExecutor(max_workers=1) as pool:
            copied = pool.submit(contextvars.copy_context().run, credentials.get_frozen_credentials).result()
            fresh = pool.submit(credentials.get_frozen_credentials).result()
    assert copied.access_key == "AKIAPRODUCER"  # a context copied into a worker thread keeps the principal
    assert fresh.access_key == "AKIAOPERATOR"  # a thread started without it does not
    assert credentials.get_frozen_credentials().access_key == "AKIAOPERATOR"


def test_an_unknown_principal_is_an_error_not_the_operator(credentials) -> None:
    with acting_as("nobody"), pytest.raises(LookupError, match="nobody"):
        credentials.get_frozen_credentials()


def test_a_restarted_stack_rekeys_the_credentials_clients_already_hold(credentials) -> None:
    credentials.use({OPERATOR: AccessKey(access_key_id="AKIANEW", secret_access_key="s")})
    assert credentials.get_frozen_credentials().access_key == "AKIANEW"


def test_the_emulator_copy_drops_conditions_and_names_any_resource_only_for_services_checked_against_any() -> None:
    # GIVEN a policy with a conditioned S3 listing, an S3 object grant and a Kinesis grant
    exact = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "List",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::b"],
                "Condition": {"StringLike": {"s3:prefix": ["data/manifests/*"]}},
            },
            {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/data/*"]},
            {"Sid": "Put", "Effect": "Allow", "Action": ["kinesis:PutRecords"], "Resource": ["arn:aws:kinesis:x"]},
            {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": ["q"]},
        ],
    }
    # WHEN it is copied for the emulator
    emulated = for_emulator(exact)
    listing, reading, putting, sending, naming = emulated["Statement"]
    # THEN the condition is gone, S3 keeps its ARNs, and Kinesis names any resource
    assert "Condition" not in listing
    assert listing["Resource"] == ["arn:aws:s3:::b"]
    assert reading == exact["Statement"][1]
    assert putting["Resource"] == ["*"]
    # AND a statement mixing both kinds is split: the queue's ARN for SendMessage, any for GetQueueUrl
    assert (sending["Action"], sending["Resource"]) == (["sqs:SendMessage"], ["q"])
    assert (naming["Action"], naming["Resource"]) == (["sqs:GetQueueUrl"], ["*"])
    # AND the exact policy is untouched
    assert "Condition" in exact["Statement"][0]
    assert exact["Statement"][2]["Resource"] == ["arn:aws:kinesis:x"]
