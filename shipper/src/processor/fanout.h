// Hands every event to several outputs; the event counts as delivered once each of them acknowledged it.
#pragma once

#include <vector>

#include "checkpoint/acknowledger.h"
#include "processor/processor.h"

namespace pgstream {

class FanOut : public Processor {
  public:
    FanOut(std::vector<Processor*> outputs, Acknowledger& acknowledger)
        : outputs_(std::move(outputs)), acknowledger_(acknowledger) {}

    std::string name() const override { return "fan-out"; }
    void process(EventPtr event) override {
        if (outputs_.size() > 1) acknowledger_.retain(*event, int(outputs_.size()) - 1);
        for (Processor* output : outputs_) output->process(event);
    }
    void flush() override {
        for (Processor* output : outputs_) output->flush();
    }
    void source_idle() override {
        for (Processor* output : outputs_) output->source_idle();
    }
    void close() override {
        for (Processor* output : outputs_) output->close();
    }
    std::string fatal_error() const override {
        for (Processor* output : outputs_) {
            std::string error = output->fatal_error();
            if (!error.empty()) return error;
        }
        return {};
    }

  private:
    std::vector<Processor*> outputs_;
    Acknowledger& acknowledger_;
};

}  // namespace pgstream
