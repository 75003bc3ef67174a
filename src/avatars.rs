//! The avatar catalogue: the only avatars a member may pick, served as SVG files from `public/avatars/`.

/// Avatar ids, in the order the picker shows them.
pub const AVATARS: &[&str] = &[
    "fox",
    "owl",
    "cat",
    "frog",
    "bear",
    "panda",
    "robot",
    "alien",
    "ghost",
    "cactus",
    "octopus",
    "penguin",
    "tiger",
    "koala",
    "unicorn",
    "astronaut",
];

/// The avatar picked when the browser remembers none.
pub const DEFAULT_AVATAR: &str = "fox";

/// One entry of the catalogue as the picker needs it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Avatar {
    pub id: String,
    pub label: String,
    pub url: String,
}

/// True if `id` names an avatar of the catalogue.
pub fn is_avatar(id: &str) -> bool {
    AVATARS.contains(&id)
}

/// The catalogue avatar shown for `avatar`: itself, or the default for anything else (such
/// as the image URL of an old-protocol client).
pub fn shown_avatar(avatar: &str) -> &str {
    if is_avatar(avatar) {
        avatar
    } else {
        DEFAULT_AVATAR
    }
}

/// Path of the avatar's image: always one of the catalogue's, so the result is a safe URL.
pub fn avatar_url(id: &str) -> String {
    format!("/avatars/{}.svg", shown_avatar(id))
}

/// Human label of an avatar ("fox" → "Fox"), used as the image's alt text.
pub fn avatar_label(id: &str) -> String {
    let mut chars = shown_avatar(id).chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The whole catalogue.
pub fn catalogue() -> Vec<Avatar> {
    AVATARS
        .iter()
        .map(|id| Avatar {
            id: (*id).to_string(),
            label: avatar_label(id),
            url: avatar_url(id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_at_least_twelve_distinct_avatars_with_files() {
        let ids: std::collections::HashSet<_> = AVATARS.iter().collect();
        assert!(ids.len() >= 12);
        assert_eq!(ids.len(), AVATARS.len(), "ids are unique");
        for id in AVATARS {
            let path = format!("{}/public/avatars/{id}.svg", env!("CARGO_MANIFEST_DIR"));
            assert!(std::path::Path::new(&path).is_file(), "missing {path}");
        }
    }

    #[test]
    fn unknown_avatar_never_becomes_a_url_of_its_own() {
        assert_eq!(avatar_url("../../etc/passwd"), "/avatars/fox.svg");
        assert_eq!(avatar_url("owl"), "/avatars/owl.svg");
        assert_eq!(avatar_label("owl"), "Owl");
        let foreign = "https://img.example/me.png";
        assert_eq!(avatar_url(foreign), "/avatars/fox.svg");
        assert_eq!(avatar_label(foreign), "Fox");
    }
}
