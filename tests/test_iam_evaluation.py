"""The test evaluator of IAM policies (tests/iam_evaluation.py) follows AWS's documented evaluation logic."""

import pytest

from iam_evaluation import ALLOW, DENY, IMPLICIT_DENY, Request, condition_holds, evaluate, wildcard_match

ROLE = "arn:aws:iam::111111111111:role/nodes"
FS = "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-1"
ALLOW_ROLE = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "elasticfilesystem:ClientMount",
              "Resource": FS}
DENY_PLAIN = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*", "Resource": FS,
              "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def request(**context):
    return Request(action="elasticfilesystem:ClientMount", resource=FS, principal=ROLE, context=context)


def test_an_explicit_deny_wins_over_an_allow():
    policy = {"Statement": [ALLOW_ROLE, DENY_PLAIN]}
    assert evaluate(policy, request(**{"aws:SecureTransport": "false"})) == DENY
    assert evaluate(policy, request(**{"aws:SecureTransport": "true"})) == ALLOW


def test_nothing_applicable_is_an_implicit_deny():
    assert evaluate({"Statement": [DENY_PLAIN]}, request(**{"aws:SecureTransport": "true"})) == IMPLICIT_DENY
    other = Request(action="elasticfilesystem:ClientMount", resource=FS, principal="arn:aws:iam::1:role/x")
    assert evaluate({"Statement": [ALLOW_ROLE]}, other) == IMPLICIT_DENY


def test_an_anonymous_client_matches_only_the_wildcard_principal():
    anonymous = Request(action="elasticfilesystem:ClientMount", resource=FS, principal=None)
    assert evaluate({"Statement": [ALLOW_ROLE]}, anonymous) == IMPLICIT_DENY
    assert evaluate({"Statement": [{**ALLOW_ROLE, "Principal": {"AWS": "*"}}]}, anonymous) == ALLOW
    assert evaluate({"Statement": [{**ALLOW_ROLE, "Principal": "*"}]}, anonymous) == ALLOW


def test_actions_match_case_insensitively_with_wildcards_and_resources_case_sensitively():
    assert wildcard_match("elasticloadbalancing:Describe*", "ElasticLoadBalancing:DescribeRules", ignore_case=True)
    assert not wildcard_match("elasticloadbalancing:Describe*", "elasticloadbalancing:DeleteRule", ignore_case=True)
    assert wildcard_match("arn:aws:elasticloadbalancing:*:*:listener/*",
                          "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c")
    assert not wildcard_match("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket")
    assert wildcard_match("file-system/fs-?", "file-system/fs-1")


def test_not_action_and_not_resource_invert_the_match():
    statement = {"Effect": "Allow", "Principal": "*", "NotAction": "elasticfilesystem:ClientRootAccess",
                 "NotResource": "arn:aws:elasticfilesystem:*:*:file-system/other"}
    assert evaluate({"Statement": [statement]}, request()) == ALLOW
    root = Request(action="elasticfilesystem:ClientRootAccess", resource=FS, principal=ROLE)
    assert evaluate({"Statement": [statement]}, root) == IMPLICIT_DENY


def test_every_condition_must_hold_and_any_value_of_a_key_may_match():
    statement = {**ALLOW_ROLE, "Condition": {
        "Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"},
        "StringEquals": {"elasticfilesystem:AccessPointArn": ["ap-1", "ap-2"]}}}
    policy = {"Statement": [statement]}
    both = {"elasticfilesystem:AccessedViaMountTarget": "true", "elasticfilesystem:AccessPointArn": "ap-2"}
    assert evaluate(policy, request(**both)) == ALLOW
    assert evaluate(policy, request(**{**both, "elasticfilesystem:AccessPointArn": "ap-3"})) == IMPLICIT_DENY
    assert evaluate(policy, request(**{**both, "elasticfilesystem:AccessedViaMountTarget": "false"})) == IMPLICIT_DENY


@pytest.mark.parametrize(("operator", "policy_value", "context", "holds"), [
    ("Bool", "true", {"k": "true"}, True),
    ("Bool", "true", {"k": "TRUE"}, True),
    ("Bool", True, {"k": "true"}, True),
    ("Bool", "false", {}, False),                 # a missing key matches no positive operator
    ("BoolIfExists", "false", {}, True),          # ...unless IfExists
    ("StringEquals", "a", {"k": "a"}, True),
    ("StringEquals", "a", {"k": "A"}, False),
    ("StringNotEquals", "a", {}, True),           # a negated operator holds on a missing key
    ("StringNotEquals", "a", {"k": "a"}, False),
    ("StringLike", "team-*", {"k": "team-a"}, True),
    ("StringNotLike", "team-*", {"k": "team-a"}, False),
    ("ArnLike", "arn:aws:iam::*:role/x", {"k": "arn:aws:iam::1:role/x"}, True),
    ("Null", "false", {"k": "v"}, True),
    ("Null", "false", {}, False),
    ("Null", "true", {}, True),
    ("Null", "true", {"k": "v"}, False),
])
def test_condition_operators(operator, policy_value, context, holds):
    assert condition_holds(operator, "k", policy_value, context) is holds


def test_an_operator_it_does_not_know_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="IpAddress"):
        condition_holds("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws:SourceIp": "10.0.0.1"})
