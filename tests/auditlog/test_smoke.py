from auditlog.models import AuditLogEntry


def test_world_is_captured(world_a):
    ops = list(AuditLogEntry.objects.order_by("id").values_list("operation_name", flat=True))
    assert ops[0] == "TenantCreation"
    assert ops.count("UsersInvitation") == 3
    assert ops.count("AuthenticationTokenCreation") == 3
