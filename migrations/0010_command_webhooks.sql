-- Commands reach their device owner's webhooks (the "command" event of the
-- notification preferences): each time a command is created or its status
-- changes, in the transaction that made the change, whichever code path made
-- it. The body is the WebSocket message {"type": "command", "command": {...}}
-- with the fields of api/resources.c's command_to_json(). Sessions get commands
-- from the hub (live/commands.c), so the event is for webhooks only.

CREATE FUNCTION command_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    SELECT owner_id INTO owner FROM devices WHERE id = NEW.device_id;
    PERFORM notification_enqueue(owner, 'command', jsonb_build_object(
        'type', 'command',
        'command', jsonb_build_object(
            'id', NEW.id, 'device_id', NEW.device_id, 'name', NEW.name, 'params', NEW.params,
            'status', NEW.status, 'attempts', NEW.attempts, 'created_by', NEW.created_by,
            'alert_id', NEW.alert_id, 'created_at', rfc3339(NEW.created_at),
            'expires_at', rfc3339(NEW.expires_at), 'sent_at', rfc3339(NEW.sent_at),
            'completed_at', rfc3339(NEW.completed_at), 'result', NEW.result,
            'error', NEW.error))::text, false);
    RETURN NULL;
END
$$;

CREATE TRIGGER commands_notify AFTER INSERT OR UPDATE OF status ON commands
    FOR EACH ROW EXECUTE FUNCTION command_notify();
