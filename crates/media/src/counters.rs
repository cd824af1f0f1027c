//! `counters!`: a struct of named `u64` counters with `merge` and `iter`, for the
//! per-kind statistics of the inspectors.

/// Declares a `Default + Copy` struct of `pub u64` counters (each with its doc comment)
/// and `merge` (add another's counts) and `iter` (each counter with its field name, in
/// declaration order).
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident: u64, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: u64, )*
        }

        impl $name {
            /// Adds another's counts.
            pub fn merge(&mut self, other: &$name) {
                $( self.$field = self.$field.saturating_add(other.$field); )*
            }

            /// Every counter with its name, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( (stringify!($field), self.$field), )*].into_iter()
            }
        }
    };
}
