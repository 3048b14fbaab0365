#!/usr/bin/env python3
"""A one-stop system calling the Liên Thông gateway from Python, with grpcio.

As an officer of a connected unit it makes a lookup, a verification and an auto-fill, reads a
household, verifies a batch, runs the birth bundle's first step, lists the procedures, then makes
a call the gateway refuses, and prints the refusal's details (ErrorInfo reason, the Vietnamese
LocalizedMessage, field violations, quota and retry information) and each reply's audit receipt.

The stubs are generated from the contract in proto/ at start (grpcio-tools), so nothing
generated is kept. Exit status: 0 when every call gave what the sample data makes it give.

    pip install -r requirements.txt
    python3 onestop.py --endpoint 127.0.0.1:50051 --ca .lienthong/pki/ca.pem \
        --cert .lienthong/pki/units/ha-tinh.pem --key .lienthong/pki/units/ha-tinh.key \
        --token-file .lienthong/tokens/CB.H42.0001.jwt
"""

import argparse
import datetime
import importlib
import pathlib
import sys
import tempfile
import time
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_DIR = HERE.parents[2] / "proto" / "proto"


def generate_stubs(proto_dir: pathlib.Path, out: pathlib.Path):
    """Compiles the gateway's contract into Python modules under `out`."""
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    files = ["lienthong/csdl/v1/csdl.proto", "lienthong/gateway/v1/gateway.proto"]
    status = protoc.main(
        [
            "protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *files,
        ]
    )
    if status != 0:
        sys.exit(f"cannot compile the contract in {proto_dir} (protoc exit {status})")
    sys.path.insert(0, str(out))
    return (
        importlib.import_module("lienthong.gateway.v1.gateway_pb2"),
        importlib.import_module("lienthong.gateway.v1.gateway_pb2_grpc"),
    )


FAILURES = []


def receipt(call) -> str:
    """The audit receipt the gateway sends in trailing metadata."""
    trailers = dict(call.trailing_metadata() or ())
    if "x-audit-sequence" not in trailers:
        FAILURES.append("a reply without its audit receipt")
    return "chain {} sequence {} hash {}…".format(
        trailers.get("x-audit-chain", "?"),
        trailers.get("x-audit-sequence", "?"),
        trailers.get("x-audit-hash", "?")[:16],
    )


def retry_delay(error: grpc.RpcError):
    """The delay a RESOURCE_EXHAUSTED refusal's RetryInfo asks for, in seconds, or None."""
    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


def unary(rpc, request, metadata):
    """One call, retried as [`with_retry`] says."""
    return with_retry(lambda: rpc.with_call(request, metadata=metadata, timeout=10))


def with_retry(attempt_once):
    """Runs `attempt_once`; when a rate limit refuses it, waits as its RetryInfo says and tries
    again (a few times, and only for short waits: a daily budget is not waited out)."""
    for attempt in range(4):
        try:
            return attempt_once()
        except grpc.RpcError as error:
            delay = retry_delay(error)
            if delay is None or delay > 5 or attempt == 3:
                raise
            print(f"  rate limited: retrying in {delay * 1000:.0f} ms, as its RetryInfo says")
            time.sleep(delay)


def explain(error: grpc.RpcError) -> dict:
    """Prints everything a refusal says; returns its reason and Vietnamese message."""
    said = {"code": error.code().name, "reason": "", "message_vi": ""}
    print(f"  refused: {error.code().name}: {error.details()}")
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.LocalizedMessage,
            error_details_pb2.BadRequest,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                if kind is error_details_pb2.ErrorInfo:
                    said["reason"] = message.reason
                    print(f"    reason      {message.reason} ({message.domain})")
                elif kind is error_details_pb2.LocalizedMessage:
                    said["message_vi"] = message.message
                    print(f"    {message.locale}       {message.message}")
                elif kind is error_details_pb2.BadRequest:
                    for v in message.field_violations:
                        print(f"    field       {v.field}: {v.description}")
                elif kind is error_details_pb2.QuotaFailure:
                    for v in message.violations:
                        print(f"    quota       {v.subject}: {v.description}")
                else:
                    print(f"    retry after {message.retry_delay.ToTimedelta()}")
    print(f"    receipt     {receipt(error)}")
    return said


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="127.0.0.1:50051", help="host:port of the gateway")
    parser.add_argument("--ca", required=True, help="the CA certificate (PEM)")
    parser.add_argument("--cert", required=True, help="the unit's client certificate (PEM)")
    parser.add_argument("--key", required=True, help="the unit's private key (PEM)")
    parser.add_argument("--token-file", required=True, help="the officer's token (JWT)")
    parser.add_argument(
        "--server-name", help="the name the gateway's certificate carries, if not the host"
    )
    parser.add_argument("--proto-dir", type=pathlib.Path, default=PROTO_DIR)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        pb, pb_grpc = generate_stubs(args.proto_dir, pathlib.Path(out))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=pathlib.Path(args.ca).read_bytes(),
            private_key=pathlib.Path(args.key).read_bytes(),
            certificate_chain=pathlib.Path(args.cert).read_bytes(),
        )
        options = []
        if args.server_name:
            options.append(("grpc.ssl_target_name_override", args.server_name))
        token = pathlib.Path(args.token_file).read_text().strip()
        metadata = [("authorization", f"Bearer {token}")]

        def context(procedure: str, dossier: str):
            return pb.RequestContext(
                request_id=str(uuid.uuid4()), procedure_code=procedure, dossier_id=dossier
            )

        failures = FAILURES
        with grpc.secure_channel(args.endpoint, credentials, options) as channel:
            gateway = pb_grpc.CitizenGatewayStub(channel)
            try:
                run(pb, gateway, metadata, context, failures)
            except grpc.RpcError as error:
                explain(error)
                failures.append("a call that should have been served was refused (above)")

        for failure in failures:
            print(f"FAILED {failure}", file=sys.stderr)
        return 1 if failures else 0


def step_statuses(case) -> list:
    """Each step's status, e.g. ["DONE", "READY", "WAITING"]."""
    names = case.DESCRIPTOR.fields_by_name["steps"].message_type.fields_by_name["status"]
    return [
        names.enum_type.values_by_number[s.status].name.removeprefix("STEP_STATUS_")
        for s in case.steps
    ]


def run(pb, gateway, metadata, context, failures):
    """Every operation, as a one-stop system makes them."""

    print("LookupCitizen 042188999005 for 1.004222 (certification of a copy)")
    reply, call = unary(
        gateway.LookupCitizen,
        pb.LookupCitizenRequest(
            context=context("1.004222", "H42.01-0001"), personal_id="042188999005"
        ),
        metadata,
    )
    print(f"  {reply.citizen.full_name}, fields {', '.join(reply.disclosed_fields)}")
    print(f"  receipt {receipt(call)}")
    if reply.citizen.full_name != "Trần Thị Minh Thư":
        failures.append("lookup: unexpected name")

    print("VerifyCitizen 042092999014: declared 'Nguyễn Văn Hà' (the record has Hạ)")
    reply, call = unary(
        gateway.VerifyCitizen,
        pb.VerifyCitizenRequest(
            context=context("1.004222", "H42.01-0002"),
            personal_id="042092999014",
            claims=[pb.Claim(field="full_name", value="Nguyễn Văn Hà")],
        ),
        metadata,
    )
    result = pb.OverallResult.Name(reply.result)
    for f in reply.fields:
        print(f"  {f.field}: {pb.FieldResult.Name(f.result)} — {f.explanation_vi}")
    print(f"  overall {result}; receipt {receipt(call)}")
    if result != "OVERALL_RESULT_NEEDS_REVIEW":
        failures.append(f"verify: expected NEEDS_REVIEW, got {result}")

    print("AutofillForm LT.KHAISINH for the declaring mother 042190999002")
    reply, call = unary(
        gateway.AutofillForm,
        pb.AutofillFormRequest(
            context=context("LT.KHAISINH", "H42.01-0003"), personal_id="042190999002"
        ),
        metadata,
    )
    for f in reply.filled:
        print(f"  {f.label}: {f.value}")
    for f in reply.unfilled:
        print(f"  ({f.label}: {f.explanation_vi})")
    print(f"  form {reply.form_id}; receipt {receipt(call)}")
    if not reply.filled:
        failures.append("autofill: nothing filled")

    print("GetHousehold 042085999001 for 1.004227 (permanent residence registration)")
    reply, call = unary(
        gateway.GetHousehold,
        pb.GetHouseholdRequest(
            context=context("1.004227", "H42.01-0005"), personal_id="042085999001"
        ),
        metadata,
    )
    household = reply.household
    print(f"  {household.household_id}, head {household.head_full_name}, "
          f"{len(household.members)} members; receipt {receipt(call)}")
    if not household.members:
        failures.append("household: no members")

    print("VerifyBatch: two declarations in one stream for 1.004227")
    items = [
        pb.VerifyBatchRequest(
            context=context("1.004227", "H42.01-0006"),
            item_id=item_id,
            personal_id=personal_id,
            claims=[pb.Claim(field="full_name", value=name)],
        )
        for item_id, personal_id, name in [
            ("1", "042188999005", "Trần Thị Minh Thư"),
            ("2", "042092999014", "Nguyễn Văn Hà"),
        ]
    ]
    replies = with_retry(
        lambda: list(gateway.VerifyBatch(iter(items), metadata=metadata, timeout=30))
    )
    results = {}
    for item in replies:
        outcome = item.WhichOneof("outcome")
        if outcome == "result":
            results[item.item_id] = pb.OverallResult.Name(item.result.result)
        else:
            results[item.item_id] = f"error {item.error.reason}"
        print(f"  item {item.item_id}: {results[item.item_id]}")
    if results != {"1": "OVERALL_RESULT_MATCH", "2": "OVERALL_RESULT_NEEDS_REVIEW"}:
        failures.append(f"batch: unexpected results {results}")

    print("OpenBundle LT.KHAISINH for the declaring mother 042190999002")
    reply, call = unary(
        gateway.OpenBundle,
        pb.OpenBundleRequest(
            context=context("LT.KHAISINH", "H42.01-0007"), personal_id="042190999002"
        ),
        metadata,
    )
    case = reply.case
    print(f"  case {case.case_id}: {step_statuses(case)}; receipt {receipt(call)}")
    print("CompleteBundleStep 1.001193: the commune registers the birth")
    born = (datetime.date.today() - datetime.timedelta(days=3)).strftime("%d/%m/%Y")
    entered = {"ho_ten_tre": "Lê Gia Bảo", "ngay_sinh_tre": born, "gioi_tinh_tre": "Nam"}
    reply, call = unary(
        gateway.CompleteBundleStep,
        pb.CompleteBundleStepRequest(
            context=context("1.001193", "H42.01-0007"),
            case_id=case.case_id,
            entered=[{"key": k, "value": v} for k, v in entered.items()],
        ),
        metadata,
    )
    first = reply.case.steps[0]
    outcome = {o.key: o.value for o in first.outcome}
    print(f"  {step_statuses(reply.case)}; the child's number {outcome.get('personal_id')}, "
          f"birth certificate {outcome.get('birth_certificate_number')}; receipt {receipt(call)}")
    print("GetBundleCase: the residence step is handed to the commune police")
    reply, call = unary(
        gateway.GetBundleCase,
        pb.GetBundleCaseRequest(
            context=context("LT.KHAISINH", "H42.01-0007"), case_id=case.case_id
        ),
        metadata,
    )
    statuses = step_statuses(reply.case)
    print(f"  {statuses}; receipt {receipt(call)}")
    if statuses != ["DONE", "READY", "WAITING"] or "personal_id" not in outcome:
        failures.append(f"bundle: unexpected case {statuses} {outcome}")

    print("ListProcedures: what this unit and officer may use")
    reply, call = unary(gateway.ListProcedures, pb.ListProceduresRequest(), metadata)
    for p in reply.procedures:
        print(f"  {p.code:<12} {p.name}")
    if not reply.procedures:
        failures.append("procedures: none available")

    print("LookupCitizen for 2.000488 (a procedure the officer's role may not use)")
    try:
        unary(
            gateway.LookupCitizen,
            pb.LookupCitizenRequest(
                context=context("2.000488", "H42.01-0004"), personal_id="042188999005"
            ),
            metadata,
        )
        failures.append("refusal: the call was served")
    except grpc.RpcError as error:
        said = explain(error)
        if said["reason"] != "ROLE_NOT_ALLOWED" or not said["message_vi"]:
            failures.append(f"refusal: expected ROLE_NOT_ALLOWED, got {said}")


if __name__ == "__main__":
    sys.exit(main())
