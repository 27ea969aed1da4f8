"""The gRPC front end: Services, Revisions and Operations through one generic handler per service."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

from multicloud_gcp.emulator import protos
from multicloud_gcp.emulator.dispatch import METHODS, dispatch
from multicloud_gcp.emulator.faults import ApiError
from multicloud_gcp.emulator.model import CloudRunModel

CODES = {code.value[0]: code for code in grpc.StatusCode}


def _handler(model: CloudRunModel, method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A gRPC behaviour for one method: JSON in, dispatch, protobuf out; ApiError aborts with details."""

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return protos.from_json(method, dispatch(model, method, protos.to_json(request)))
        except ApiError as exc:
            context.set_trailing_metadata((("grpc-status-details-bin", protos.status_details(exc)),))
            context.abort(CODES[exc.code], exc.message)

    return handle


def handlers(model: CloudRunModel) -> list[grpc.GenericRpcHandler]:
    """One generic handler per gRPC service the emulator serves."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for method, (service, _, _) in METHODS.items():
        by_service.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
            _handler(model, method),
            request_deserializer=protos.request_class(method).FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
    return [grpc.method_handlers_generic_handler(name, table) for name, table in by_service.items()]


def serve(model: CloudRunModel, host: str, port: int) -> tuple[grpc.Server, int]:
    """Start an insecure gRPC server on host:port (0 picks one); return it and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="cloudrun-grpc"))
    server.add_generic_rpc_handlers(handlers(model))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    server.start()
    return server, bound
