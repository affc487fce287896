"""Pure domain rules: fit scoring, the order state machine, measurement keys, photo-search
values. No I/O, no settings: data in, decisions out."""
