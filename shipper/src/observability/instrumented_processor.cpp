#include "observability/instrumented_processor.h"

namespace pgstream {

InstrumentedProcessor::InstrumentedProcessor(Processor& inner, std::string target, Metrics& metrics)
    : inner_(inner), metrics_(metrics, std::move(target)) {}

void InstrumentedProcessor::process(EventPtr event) {
    auto started = metrics_.taking(*event);
    inner_.process(std::move(event));
    metrics_.accepted(started);
}

}  // namespace pgstream
