#include "frontend/net/metrics.h"

#include <string>

#include "frontend/net/conn_gate.h"

namespace cellar::net {

metrics::Source NetMetrics() {
  static constexpr const metrics::Def* kDefs[] = {&kConnections,         &kConnectionsTotal,
                                                  &kConnectionsRefused,  &kConnectionsTimedOut,
                                                  &kProtocolErrors,      &kNetworkBytes};
  return {kDefs, [](metrics::Sink& sink) {
            for (Port port : {Port::kResp, Port::kApi}) {
              const ConnectionGate& gate = ConnectionGate::Of(port);
              const std::string label = "port=\"" + std::string(PortName(port)) + "\"";
              sink.Add(kConnectionsRefused, label, gate.refused());
              for (TimeoutKind kind :
                   {TimeoutKind::kPreAuth, TimeoutKind::kIdle, TimeoutKind::kWrite}) {
                sink.Add(kConnectionsTimedOut,
                         label + ",reason=\"" + std::string(TimeoutName(kind)) + "\"",
                         gate.timed_out(kind));
              }
            }
          }};
}

}  // namespace cellar::net
