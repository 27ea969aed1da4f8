"""One entry point for both front ends: a method name and its request (camelCase JSON) → a response."""

from __future__ import annotations

from typing import Any

from multicloud_gcp.emulator import cloudlogging, secretmanager
from multicloud_gcp.emulator.faults import ApiError
from multicloud_gcp.emulator.model import CloudRunModel, Json

# method -> (gRPC service, request message, response message); messages resolved by the gRPC front end
METHODS = {
    "CreateService": ("google.cloud.run.v2.Services", "run_v2.CreateServiceRequest", "operations_pb2.Operation"),
    "GetService": ("google.cloud.run.v2.Services", "run_v2.GetServiceRequest", "run_v2.Service"),
    "ListServices": ("google.cloud.run.v2.Services", "run_v2.ListServicesRequest", "run_v2.ListServicesResponse"),
    "UpdateService": ("google.cloud.run.v2.Services", "run_v2.UpdateServiceRequest", "operations_pb2.Operation"),
    "DeleteService": ("google.cloud.run.v2.Services", "run_v2.DeleteServiceRequest", "operations_pb2.Operation"),
    "GetRevision": ("google.cloud.run.v2.Revisions", "run_v2.GetRevisionRequest", "run_v2.Revision"),
    "ListRevisions": ("google.cloud.run.v2.Revisions", "run_v2.ListRevisionsRequest", "run_v2.ListRevisionsResponse"),
    "GetOperation": ("google.longrunning.Operations", "operations_pb2.GetOperationRequest", "operations_pb2.Operation"),
    "ListOperations": (
        "google.longrunning.Operations",
        "operations_pb2.ListOperationsRequest",
        "operations_pb2.ListOperationsResponse",
    ),
    "DeleteOperation": ("google.longrunning.Operations", "operations_pb2.DeleteOperationRequest", "empty_pb2.Empty"),
    "WaitOperation": (
        "google.longrunning.Operations",
        "operations_pb2.WaitOperationRequest",
        "operations_pb2.Operation",
    ),
    **{
        method: (secretmanager.SERVICE, f"secretmanager_v1.{request}", f"{response}")
        for method, request, response in (
            ("CreateSecret", "CreateSecretRequest", "secretmanager_v1.Secret"),
            ("GetSecret", "GetSecretRequest", "secretmanager_v1.Secret"),
            ("UpdateSecret", "UpdateSecretRequest", "secretmanager_v1.Secret"),
            ("ListSecrets", "ListSecretsRequest", "secretmanager_v1.ListSecretsResponse"),
            ("DeleteSecret", "DeleteSecretRequest", "empty_pb2.Empty"),
            ("AddSecretVersion", "AddSecretVersionRequest", "secretmanager_v1.SecretVersion"),
            ("AccessSecretVersion", "AccessSecretVersionRequest", "secretmanager_v1.AccessSecretVersionResponse"),
        )
    },
    "ListLogEntries": (
        cloudlogging.SERVICE, "logging_v2.ListLogEntriesRequest", "logging_v2.ListLogEntriesResponse"
    ),
}


def _seconds(value: Any) -> float:
    """Seconds from a protobuf JSON duration such as '30s'."""
    return float(str(value or "60s").removesuffix("s"))


def dispatch(model: CloudRunModel, method: str, request: Json) -> Json:
    """Run one API method against the model; raise ApiError as Cloud Run would."""
    validate_only = bool(request.get("validateOnly"))
    size, token = int(request.get("pageSize") or 0), str(request.get("pageToken") or "")
    name, parent = str(request.get("name", "")), str(request.get("parent", ""))
    service = request.get("service") or {}
    handlers = {
        "CreateService": (
            parent,
            lambda: model.create_service(parent, str(request.get("serviceId", "")), service, validate_only),
        ),
        "GetService": (name, lambda: model.get_service(name)),
        "ListServices": (parent, lambda: model.list_services(parent, size, token)),
        "UpdateService": (
            str(service.get("name", "")),
            lambda: model.update_service(service, bool(request.get("allowMissing")), validate_only),
        ),
        "DeleteService": (name, lambda: model.delete_service(name, validate_only)),
        "GetRevision": (name, lambda: model.get_revision(name)),
        "ListRevisions": (parent, lambda: model.list_revisions(parent, size, token)),
        "GetOperation": (name, lambda: model.get_operation(name)),
        "ListOperations": (name, lambda: model.list_operations(name, size, token)),
        "DeleteOperation": (name, lambda: model.delete_operation(name)),
        **secretmanager.handlers(model.secrets, request),
        **cloudlogging.handlers(model.logging, request),
    }
    if method == "WaitOperation":
        model.call(method, name, lambda: {})
        return model.wait_operation(name, _seconds(request.get("timeout")))
    if method not in handlers:
        raise ApiError("UNIMPLEMENTED", f"Method {method} is not implemented by the Cloud Run emulator.")
    resource, handler = handlers[method]
    return model.call(method, resource, handler)
