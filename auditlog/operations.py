"""The operation catalog: every operation the audit log can record, named once.

Names follow the public Tines vocabulary where one exists and are invented in the same
PascalCase style where none does. A name, once shipped, is never renamed or reused.
"""

from collections.abc import Collection
from dataclasses import dataclass

USER_MANAGEMENT = "User management"
CREDENTIALS_AND_RESOURCES = "Credentials and resources"
STORIES_AND_VERSIONS = "Stories and versions"
TEAMS = "Teams"
AUTHENTICATION = "Authentication and access control"
PAGES = "Pages and apps"
AUDIT_LOG = "The audit log"

CATEGORIES = (
    USER_MANAGEMENT,
    CREDENTIALS_AND_RESOURCES,
    STORIES_AND_VERSIONS,
    TEAMS,
    AUTHENTICATION,
    PAGES,
    AUDIT_LOG,
)


@dataclass(frozen=True)
class Operation:
    """One kind of audited operation."""

    name: str
    category: str
    description: str
    target_type: str
    # A more exact description for an entry whose ``changes`` include a field, first match
    # wins: the name stays what clients expect, the description follows the change.
    when_changed: tuple[tuple[str, str], ...] = ()

    def describe(self, changed: Collection[str] = ()) -> str:
        """The description of one entry of this operation, given the fields it changed."""
        for field, description in self.when_changed:
            if field in changed:
                return description
        return self.description


_CATALOG = (
    Operation("UsersInvitation", USER_MANAGEMENT, "Invited a user to the tenant", "user"),
    Operation("UserEdit", USER_MANAGEMENT, "Edited a user's name, email or status", "user"),
    Operation("UserRoleChange", USER_MANAGEMENT, "Changed a user's tenant role", "user"),
    Operation(
        "UserPermissionsChange", USER_MANAGEMENT, "Changed a user's tenant permissions", "user"
    ),
    Operation("UserPasswordChange", USER_MANAGEMENT, "Changed a user's password", "user"),
    Operation("UserDeletion", USER_MANAGEMENT, "Removed a user from the tenant", "user"),
    Operation(
        "CredentialSave",
        CREDENTIALS_AND_RESOURCES,
        "Created or edited a credential",
        "credential",
        when_changed=(("value", "Changed a credential's value"),),
    ),
    Operation(
        "CredentialDestruction", CREDENTIALS_AND_RESOURCES, "Deleted a credential", "credential"
    ),
    Operation(
        "GlobalResourceCreation", CREDENTIALS_AND_RESOURCES, "Created a resource", "resource"
    ),
    Operation("GlobalResourceEdit", CREDENTIALS_AND_RESOURCES, "Edited a resource", "resource"),
    Operation(
        "GlobalResourceDestruction", CREDENTIALS_AND_RESOURCES, "Deleted a resource", "resource"
    ),
    Operation("StoryCreation", STORIES_AND_VERSIONS, "Created a story", "story"),
    Operation("StoryNameChange", STORIES_AND_VERSIONS, "Renamed a story", "story"),
    Operation(
        "StoryDescriptionChange", STORIES_AND_VERSIONS, "Changed a story's description", "story"
    ),
    Operation("StoryDisabledChange", STORIES_AND_VERSIONS, "Enabled or disabled a story", "story"),
    Operation("StoryLockedChange", STORIES_AND_VERSIONS, "Locked or unlocked a story", "story"),
    Operation("StoryMovement", STORIES_AND_VERSIONS, "Moved a story to another team", "story"),
    Operation("StoryArchive", STORIES_AND_VERSIONS, "Archived a story", "story"),
    Operation("StoryRestore", STORIES_AND_VERSIONS, "Restored an archived story", "story"),
    Operation(
        "ArchivedStoryDeletion", STORIES_AND_VERSIONS, "Permanently deleted a story", "story"
    ),
    Operation(
        "StoryVersionCreate", STORIES_AND_VERSIONS, "Saved a named story version", "story_version"
    ),
    Operation(
        "StoryVersionNameChange", STORIES_AND_VERSIONS, "Renamed a story version", "story_version"
    ),
    Operation(
        "StoryVersionDeletion", STORIES_AND_VERSIONS, "Deleted a story version", "story_version"
    ),
    Operation("TeamCreation", TEAMS, "Created a team", "team"),
    Operation("TeamUpdate", TEAMS, "Edited a team", "team"),
    Operation("TeamDestruction", TEAMS, "Deleted a team", "team"),
    Operation("TeamMembersAddition", TEAMS, "Added a member to a team", "team_membership"),
    Operation("TeamMemberRemoval", TEAMS, "Removed a member from a team", "team_membership"),
    Operation("TeamMemberRoleChange", TEAMS, "Changed a team member's role", "team_membership"),
    Operation("Login", AUTHENTICATION, "Signed in", "user"),
    Operation("LoginFailure", AUTHENTICATION, "Failed to sign in", "user"),
    Operation("Logout", AUTHENTICATION, "Signed out", "user"),
    Operation("LoginLockout", AUTHENTICATION, "Locked out after repeated failed sign-ins", "user"),
    Operation("AuthenticationTokenCreation", AUTHENTICATION, "Created an API key", "api_key"),
    Operation("AuthenticationTokenDeletion", AUTHENTICATION, "Revoked an API key", "api_key"),
    Operation("AuthenticationTokenEdit", AUTHENTICATION, "Renamed an API key", "api_key"),
    Operation(
        "AuthenticationTokenUse", AUTHENTICATION, "Used an API key (at most hourly)", "api_key"
    ),
    Operation("TenantCreation", AUTHENTICATION, "Created the tenant", "tenant"),
    Operation("TenantConfigChange", AUTHENTICATION, "Changed tenant settings", "tenant"),
    Operation("AuditLogDownload", AUDIT_LOG, "Downloaded audit log entries", "audit_log"),
    Operation(
        "AuditLogExportConfigurationChange",
        AUDIT_LOG,
        "Changed the S3 export settings of the audit log",
        "audit_log_export",
    ),
    Operation(
        "AuditLogRetentionPrune",
        AUDIT_LOG,
        "Removed entries older than the retention window from the product",
        "audit_log",
    ),
    Operation("PageCreation", PAGES, "Created a page", "page"),
    Operation("PageUpdate", PAGES, "Edited a page", "page"),
    Operation("PageDestruction", PAGES, "Deleted a page", "page"),
    Operation("PagePublish", PAGES, "Published a page", "page"),
    Operation("PageUnpublish", PAGES, "Unpublished a page", "page"),
)

OPERATIONS: dict[str, Operation] = {op.name: op for op in _CATALOG}
assert len(OPERATIONS) == len(_CATALOG), "an operation is named twice"  # noqa: S101
# Target types are stored as the catalog spells them (lower case), so a filter can lower-case
# what it is given and still match on the index.
assert all(op.target_type == op.target_type.lower() for op in _CATALOG)  # noqa: S101

# The fields whose presence in ``changes`` changes some entry's description.
DESCRIBING_FIELDS = frozenset(field for op in _CATALOG for field, _ in op.when_changed)

_TARGET_WORDS = {"api": "API"}


def _target_label(target_type: str) -> str:
    words = [_TARGET_WORDS.get(w, w) for w in target_type.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


# Every target type of the catalog and how people say it: ``story_version`` -> "Story version".
TARGET_TYPES: dict[str, str] = {
    t: _target_label(t) for t in sorted({op.target_type for op in _CATALOG})
}


def get_operation(name: str) -> Operation:
    """The catalog entry for ``name``; raises ``KeyError`` for a name not in the catalog."""
    return OPERATIONS[name]


def describe(name: str, changed: Collection[str] = ()) -> str:
    """What an entry of operation ``name`` that changed ``changed`` did, in words.

    A name the catalog does not hold (none should be stored) is shown as it is.
    """
    operation = OPERATIONS.get(name)
    return operation.describe(changed) if operation else name
