#include "wal/event.h"

namespace pgstream {

const Column* Event::find_column(const std::string& name) const {
    for (const auto& column : columns)
        if (column.name == name) return &column;
    return nullptr;
}

size_t action_index(Action action) {
    switch (action) {
        case Action::Insert:
            return 0;
        case Action::Update:
            return 1;
        case Action::Delete:
            return 2;
        case Action::Truncate:
            return 3;
        case Action::Message:
            return 4;
    }
    return 4;
}

const char* action_label(Action action) {
    static constexpr const char* kLabels[kActionCount] = {"insert", "update", "delete", "truncate",
                                                          "message"};
    return kLabels[action_index(action)];
}

MutableEventPtr take_for_completion(EventPtr&& event) {
    // Sole owner: nobody else can see the change. The object was created non-const (std::make_shared<Event>,
    // or new Event for the snapshot readers' recycled events), so writing through the cast is defined.
    if (event.use_count() == 1) return std::const_pointer_cast<Event>(std::move(event));
    return std::make_shared<Event>(*event);
}

}  // namespace pgstream
