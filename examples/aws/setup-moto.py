#!/usr/bin/env python3
"""Prepares a moto server for the AWS example: a bucket with the template, and an AWS Batch
queue. moto's Batch runs without Docker here, so jobs finish inside SubmitJob.

    python3 examples/aws/setup-moto.py --endpoint http://127.0.0.1:5000

Needs boto3 (it comes with moto). Safe to run twice.
"""
import argparse
import json
import os
import urllib.request

import boto3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"))
    parser.add_argument("--region", default="us-west-2")
    parser.add_argument("--bucket", default="simseries-example")
    parser.add_argument("--queue", default="simseries-example")
    parser.add_argument("--template", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.xml"))
    args = parser.parse_args()

    # Batch jobs without Docker (the setting survives /moto-api/reset).
    request = urllib.request.Request(
        args.endpoint.rstrip("/") + "/moto-api/config",
        data=json.dumps({"batch": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=args.region)
    client = lambda name: session.client(name, endpoint_url=args.endpoint)

    s3 = client("s3")
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if args.bucket not in existing:
        if args.region == "us-east-1":
            s3.create_bucket(Bucket=args.bucket)
        else:
            s3.create_bucket(Bucket=args.bucket, CreateBucketConfiguration={"LocationConstraint": args.region})
    s3.upload_file(args.template, args.bucket, "config/template.xml")

    iam = client("iam")
    role_name = "simseries-batch-service"
    try:
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            }),
        )
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    role = iam.get_role(RoleName=role_name)["Role"]

    batch = client("batch")
    environments = batch.describe_compute_environments(computeEnvironments=[args.queue])["computeEnvironments"]
    if environments:
        environment_arn = environments[0]["computeEnvironmentArn"]
    else:
        environment_arn = batch.create_compute_environment(
            computeEnvironmentName=args.queue, type="UNMANAGED", state="ENABLED", serviceRole=role["Arn"]
        )["computeEnvironmentArn"]
    if not batch.describe_job_queues(jobQueues=[args.queue])["jobQueues"]:
        batch.create_job_queue(
            jobQueueName=args.queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment_arn}],
        )
    print(json.dumps({"bucket": args.bucket, "queue": args.queue, "region": args.region}))


if __name__ == "__main__":
    main()
