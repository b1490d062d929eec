// The connection metrics every front-end shares. frontend/net declares them and reads what it
// owns (the ports' connection gates); each front-end's own source adds its samples under its
// `protocol` label (resp, grpc).
#pragma once

#include "common/metrics.h"

namespace cellar::net {

inline constexpr metrics::Def kConnections{"cellar_connections", metrics::Type::kGauge,
                                           "Open client connections.", "protocol"};
inline constexpr metrics::Def kConnectionsTotal{
    "cellar_connections_total", metrics::Type::kCounter, "Client connections accepted.",
    "protocol"};
inline constexpr metrics::Def kConnectionsRefused{
    "cellar_connections_refused_total", metrics::Type::kCounter,
    "Connections refused at accept: the port's --max-connections or the process's descriptor "
    "budget was reached.",
    "port"};
inline constexpr metrics::Def kConnectionsTimedOut{
    "cellar_connections_timed_out_total", metrics::Type::kCounter,
    "Connections closed by a timeout: preauth (no authentication in time), idle, or write (a "
    "client that does not read its replies).",
    "port,reason"};
inline constexpr metrics::Def kProtocolErrors{"cellar_protocol_errors_total",
                                              metrics::Type::kCounter,
                                              "Connections closed for malformed input.", "protocol"};
inline constexpr metrics::Def kNetworkBytes{"cellar_network_bytes_total", metrics::Type::kCounter,
                                            "Bytes received and sent to clients.", "direction"};

metrics::Source NetMetrics();

}  // namespace cellar::net
