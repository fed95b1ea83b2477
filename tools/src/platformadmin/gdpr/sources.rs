//! The per-domain data sources a GDPR export reads and an erasure anonymises: one small entry per
//! table family, each an export query (one JSON value) and the statements that erase the user's
//! personal data from it. A domain that adds tables adds its entry here.
//!
//! Every statement takes `$1` = the user's id and `$2` = the personal values to scrub out of other
//! people's records (the user's email, name and mobile number, read from `auth.users` before the profile step,
//! which runs last). Erasure statements are idempotent, so a step interrupted by a crash is simply
//! run again. What the law requires is kept: ledger amounts (`booking.payment_records` is never
//! touched), the existence of every audit row, reservations and reviews (pointing at a "Deleted
//! user").

/// One table family.
pub struct Source {
    /// The key of its part of the export document.
    pub name: &'static str,
    /// A query returning one JSON value (`$1` = the user).
    pub export: &'static str,
    /// The statements that erase the user's personal data from it, in order.
    pub erase: &'static [&'static str],
}

/// Every source, in erasure order: credentials first (the user stops acting at once), the
/// profile last (its values are the needles the steps before it scrub).
pub const SOURCES: &[Source] = &[
    Source {
        name: "credentials",
        export: "SELECT jsonb_build_object(
            'apiKeys', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', k.id, 'keyPrefix', k.key_prefix,
                'active', k.active, 'description', k.description, 'revokedAt', k.revoked_at,
                'lastUsedAt', k.last_used_at, 'createdAt', k.created_at) ORDER BY k.created_at)
                FROM platformadmin.api_keys k WHERE k.created_by = $1), '[]'),
            'sessions', COALESCE((SELECT jsonb_agg(jsonb_build_object('id', s.id, 'createdAt', s.created_at,
                'expiresAt', s.expires_at, 'revokedAt', s.revoked_at) ORDER BY s.created_at)
                FROM auth.sessions s WHERE s.user_id = $1), '[]'),
            'oauthGrants', COALESCE((SELECT jsonb_agg(jsonb_build_object('clientId', g.client_id,
                'clientName', c.client_name, 'scope', g.scope, 'createdAt', g.created_at) ORDER BY g.created_at)
                FROM oauth.grants g JOIN oauth.clients c ON c.id = g.client_id WHERE g.user_id = $1), '[]'))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE auth.sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND $2::text[] IS NOT NULL",
            "UPDATE platformadmin.api_keys SET active = false, revoked_at = COALESCE(revoked_at, now()),
                description = NULL, record_version = record_version + 1, updated_at = now()
             WHERE created_by = $1 AND (active OR description IS NOT NULL) AND $2::text[] IS NOT NULL",
            "UPDATE oauth.refresh_tokens SET used_at = now() WHERE used_at IS NULL
                AND session_id IN (SELECT session_id FROM oauth.grants WHERE user_id = $1) AND $2::text[] IS NOT NULL",
            "UPDATE oauth.consent_tickets SET used_at = COALESCE(used_at, now()), state = NULL
             WHERE user_id = $1 AND $2::text[] IS NOT NULL",
            "UPDATE oauth.codes SET used_at = COALESCE(used_at, now()) WHERE user_id = $1 AND $2::text[] IS NOT NULL",
            "UPDATE auth.verification_codes SET used_at = COALESCE(used_at, now())
             WHERE user_id = $1 AND used_at IS NULL AND $2::text[] IS NOT NULL",
            "DELETE FROM auth.login_throttle WHERE scope = 'account' AND lower(key) = ANY (SELECT lower(n) FROM unnest($2::text[]) n)
                AND $1::uuid IS NOT NULL",
        ],
    },
    Source {
        name: "groups",
        export: "SELECT COALESCE(jsonb_agg(jsonb_build_object('groupId', g.id, 'groupName', g.group_name,
                'isActive', m.is_active, 'joinedAt', m.created_at) ORDER BY m.created_at), '[]')
            FROM auth.user_group_members m JOIN auth.user_groups g ON g.id = m.group_id
            WHERE m.user_id = $1 AND $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE auth.user_group_members SET is_active = false, record_version = record_version + 1,
                updated_at = now() WHERE user_id = $1 AND is_active AND $2::text[] IS NOT NULL",
            "UPDATE auth.user_groups SET group_name = platformadmin.scrub(to_jsonb(group_name), $2) #>> '{}'
             WHERE owner_id = $1",
        ],
    },
    Source {
        name: "avatarFiles",
        export: "SELECT COALESCE(jsonb_agg(jsonb_build_object('id', f.id, 'fileName', f.file_name,
                'mimeType', f.mime_type, 'fileSize', f.file_size, 'createdAt', f.created_at) ORDER BY f.created_at), '[]')
            FROM auth.user_avatars_files f WHERE (f.owner_id = $1 OR f.user_id = $1) AND $2::text[] IS NOT NULL",
        erase: &[
            "DELETE FROM auth.user_avatars_files WHERE (owner_id = $1 OR user_id = $1) AND $2::text[] IS NOT NULL",
        ],
    },
    Source {
        name: "listings",
        export: "SELECT COALESCE(jsonb_agg(to_jsonb(l) || jsonb_build_object(
                'localeTexts', COALESCE((SELECT jsonb_agg(to_jsonb(t) ORDER BY t.language_code)
                    FROM catalog.listing_locale_texts t WHERE t.listing_id = l.id), '[]'),
                'calendar', COALESCE((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.created_at)
                    FROM catalog.listing_calendars c WHERE c.listing_id = l.id), '[]'))
                ORDER BY l.created_at), '[]')
            FROM catalog.listings l WHERE l.host_id = $1 AND $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE catalog.listings SET is_published = false, address = 'erased',
                title = platformadmin.scrub(to_jsonb(title), $2) #>> '{}',
                description = platformadmin.scrub(to_jsonb(description), $2) #>> '{}',
                house_rules = platformadmin.scrub(to_jsonb(house_rules), $2) #>> '{}',
                record_version = record_version + 1, updated_at = now()
             WHERE host_id = $1 AND (is_published OR address <> 'erased')",
            "UPDATE catalog.listing_locale_texts t SET
                localized_title = platformadmin.scrub(to_jsonb(localized_title), $2) #>> '{}',
                localized_description = platformadmin.scrub(to_jsonb(localized_description), $2) #>> '{}'
             FROM catalog.listings l WHERE l.id = t.listing_id AND l.host_id = $1",
        ],
    },
    Source {
        name: "reservations",
        export: "SELECT COALESCE(jsonb_agg(to_jsonb(r) || jsonb_build_object(
                'role', CASE WHEN r.guest_id = $1 THEN 'guest' ELSE 'host' END,
                'timeline', COALESCE((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.created_at, a.id)
                    FROM booking.reservation_activities a WHERE a.reservation_id = r.id), '[]'))
                ORDER BY r.created_at), '[]')
            FROM booking.reservations r WHERE (r.guest_id = $1 OR r.host_id = $1) AND $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE booking.reservations SET guest_note = NULL WHERE guest_id = $1 AND guest_note IS NOT NULL
                AND $2::text[] IS NOT NULL",
            "UPDATE booking.reservations SET cancellation_reason = NULL WHERE cancelled_by = $1
                AND cancellation_reason IS NOT NULL AND $2::text[] IS NOT NULL",
            "UPDATE booking.reservation_activities SET note = NULL WHERE actor_id = $1 AND note IS NOT NULL
                AND $2::text[] IS NOT NULL",
            "UPDATE booking.reservation_activities a SET old_value = platformadmin.scrub(old_value, $2),
                new_value = platformadmin.scrub(new_value, $2)
             FROM booking.reservations r WHERE r.id = a.reservation_id AND (r.guest_id = $1 OR r.host_id = $1)",
        ],
    },
    Source {
        name: "payments",
        export: "SELECT jsonb_build_object(
            'ledger', COALESCE((SELECT jsonb_agg(to_jsonb(p) ORDER BY p.created_at)
                FROM booking.payment_records p JOIN booking.reservations r ON r.id = p.reservation_id
                WHERE r.guest_id = $1 OR r.host_id = $1), '[]'),
            'tickets', COALESCE((SELECT jsonb_agg(to_jsonb(t) ORDER BY t.created_at)
                FROM booking.reservation_payments t WHERE t.owner_id = $1), '[]'),
            'customers', COALESCE((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.created_at)
                FROM booking.payment_customers c WHERE c.user_id = $1), '[]'),
            'methods', COALESCE((SELECT jsonb_agg(to_jsonb(m) ORDER BY m.created_at)
                FROM booking.payment_methods m WHERE m.user_id = $1), '[]'))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE booking.payment_methods SET card_holder_name = NULL, card_holder_zip = NULL,
                card_info = NULL, is_active = false, record_version = record_version + 1, updated_at = now()
             WHERE user_id = $1 AND (is_active OR card_holder_name IS NOT NULL OR card_info IS NOT NULL)
                AND $2::text[] IS NOT NULL",
            "UPDATE booking.local_payment_intents i SET metadata = platformadmin.scrub(metadata, $2),
                description = platformadmin.scrub(to_jsonb(description), $2) #>> '{}'
             WHERE i.customer_id IN (SELECT customer_id FROM booking.payment_customers WHERE user_id = $1)",
        ],
    },
    Source {
        name: "disputes",
        export: "SELECT COALESCE(jsonb_agg(to_jsonb(d) || jsonb_build_object(
                'adminActions', COALESCE((SELECT jsonb_agg(to_jsonb(a) - 'notes' ORDER BY a.action_date)
                    FROM platformadmin.admin_dispute_actions a WHERE a.dispute_id = d.id), '[]'))
                ORDER BY d.created_at), '[]')
            FROM booking.disputes d JOIN booking.reservations r ON r.id = d.reservation_id
            WHERE (d.raised_by = $1 OR r.guest_id = $1 OR r.host_id = $1) AND $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE booking.disputes SET description = 'erased at the request of the user who wrote it',
                record_version = record_version + 1, updated_at = now()
             WHERE raised_by = $1 AND description <> 'erased at the request of the user who wrote it'
                AND $2::text[] IS NOT NULL",
        ],
    },
    Source {
        name: "reviews",
        export: "SELECT jsonb_build_object(
            'written', COALESCE((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.created_at)
                FROM reviews.reviews r WHERE r.reviewer_id = $1), '[]'),
            'received', COALESCE((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.created_at)
                FROM reviews.reviews r WHERE r.reviewer_id <> $1 AND (r.reviewee_id = $1
                    OR r.reviewee_id IN (SELECT id FROM catalog.listings WHERE host_id = $1))), '[]'))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE reviews.reviews SET review_text = platformadmin.scrub(to_jsonb(review_text), $2) #>> '{}'
             WHERE (reviewer_id = $1 OR reviewee_id = $1) AND review_text IS NOT NULL",
        ],
    },
    Source {
        name: "agentRuns",
        export: "SELECT COALESCE(jsonb_agg(to_jsonb(e) || jsonb_build_object(
                'toolCalls', COALESCE((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.seq)
                    FROM agenthub.agent_tool_calls c WHERE c.execution_id = e.id), '[]'))
                ORDER BY e.created_at), '[]')
            FROM agenthub.agent_executions e WHERE e.user_id = $1 AND $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE agenthub.agent_executions SET input = '\"[erased]\"', output = NULL, error = NULL
             WHERE user_id = $1 AND input <> '\"[erased]\"' AND $2::text[] IS NOT NULL",
            "UPDATE agenthub.agent_tool_calls c SET arguments = '{\"erased\": true}', result = NULL
             FROM agenthub.agent_executions e WHERE e.id = c.execution_id AND e.user_id = $1
                AND c.arguments <> '{\"erased\": true}' AND $2::text[] IS NOT NULL",
            // Other people's runs that read this user's data (an admin's getUser, say).
            "UPDATE agenthub.agent_executions SET input = platformadmin.scrub(input, $2),
                output = platformadmin.scrub(output, $2)
             WHERE user_id IS DISTINCT FROM $1 AND (input::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                OR output::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n))",
            "UPDATE agenthub.agent_tool_calls SET arguments = platformadmin.scrub(arguments, $2),
                result = platformadmin.scrub(result, $2)
             WHERE (arguments::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                OR result::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n))
                AND $1::uuid IS NOT NULL",
        ],
    },
    Source {
        name: "gdpr",
        export: "SELECT jsonb_build_object(
            'requests', COALESCE((SELECT jsonb_agg(to_jsonb(g) ORDER BY g.requested_at)
                FROM platformadmin.gdpr_actions g WHERE g.user_id = $1), '[]'),
            'consents', COALESCE((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.recorded_at)
                FROM platformadmin.consents c WHERE c.user_id = $1), '[]'))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            // Earlier export documents hold everything this erasure removes.
            "DELETE FROM platformadmin.gdpr_exports WHERE user_id = $1 AND $2::text[] IS NOT NULL",
        ],
    },
    Source {
        name: "messaging",
        export: "SELECT jsonb_build_object(
            'threads', COALESCE((SELECT jsonb_agg(to_jsonb(t) || jsonb_build_object(
                    'messages', COALESCE((SELECT jsonb_agg(to_jsonb(m) ORDER BY m.sent_at)
                        FROM messaging.messages m WHERE m.thread_id = t.id), '[]')) ORDER BY t.created_at)
                FROM messaging.message_threads t WHERE t.guest_id = $1 OR t.host_id = $1), '[]'),
            'reports', COALESCE((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.reported_at)
                FROM messaging.message_reports r WHERE r.reported_by = $1), '[]'))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            "UPDATE messaging.messages SET content = 'message removed at its author''s request',
                media_url = NULL, flag_reason = NULL
             WHERE sender_id = $1 AND content <> 'message removed at its author''s request' AND $2::text[] IS NOT NULL",
            "UPDATE messaging.message_edits e SET previous_content = 'message removed at its author''s request'
             FROM messaging.messages m WHERE m.id = e.message_id AND m.sender_id = $1 AND $2::text[] IS NOT NULL",
            "DELETE FROM messaging.message_attachments WHERE owner_id = $1
                AND id NOT IN (SELECT attachment_id FROM messaging.messages WHERE attachment_id IS NOT NULL
                               AND sender_id <> $1) AND $2::text[] IS NOT NULL",
            "UPDATE messaging.message_reports SET report_reason = 'erased' WHERE reported_by = $1 AND $2::text[] IS NOT NULL",
            // The counterpart's "new message" notifications quote the message: the preview goes
            // with it, from the inbox and from the stored copies of its email, SMS and push.
            "UPDATE notification.notifications SET body = ''
             WHERE event_type = 'newMessage' AND body <> ''
                AND data->>'messageId' IN (SELECT id::text FROM messaging.messages WHERE sender_id = $1)
                AND $2::text[] IS NOT NULL",
            "UPDATE notification.deliveries d SET body_text = 'message removed at its author''s request',
                body_html = NULL, payload = '{}'
             FROM notification.notifications n
             WHERE n.id = d.notification_id AND n.event_type = 'newMessage'
                AND n.data->>'messageId' IN (SELECT id::text FROM messaging.messages WHERE sender_id = $1)
                AND d.body_text <> 'message removed at its author''s request' AND $2::text[] IS NOT NULL",
            "UPDATE messaging.messages SET content = platformadmin.scrub(to_jsonb(content), $2) #>> '{}'
             WHERE content ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n) AND $1::uuid IS NOT NULL",
        ],
    },
    Source {
        name: "notifications",
        export: "SELECT jsonb_build_object(
            'notifications', COALESCE((SELECT jsonb_agg(to_jsonb(n) ORDER BY n.created_at)
                FROM notification.notifications n WHERE n.user_id = $1), '[]'),
            'devices', COALESCE((SELECT jsonb_agg(to_jsonb(d) - 'push_token' ORDER BY d.created_at)
                FROM notification.devices d WHERE d.user_id = $1), '[]'),
            'preferences', COALESCE((SELECT jsonb_agg(to_jsonb(p)) FROM notification.preferences p
                WHERE p.user_id = $1), '[]'),
            'contacts', (SELECT to_jsonb(c) FROM notification.contacts c WHERE c.user_id = $1))
            WHERE $2::text[] IS NOT NULL",
        erase: &[
            "DELETE FROM notification.devices WHERE user_id = $1 AND $2::text[] IS NOT NULL",
            "DELETE FROM notification.contacts WHERE user_id = $1 AND $2::text[] IS NOT NULL",
            "UPDATE notification.deliveries SET destination = 'erased', subject = 'erased',
                body_text = 'erased', body_html = NULL, payload = '{}'
             WHERE user_id = $1 AND destination <> 'erased' AND $2::text[] IS NOT NULL",
            "UPDATE notification.notifications SET title = 'erased', body = 'erased', data = '{}'
             WHERE user_id = $1 AND body <> 'erased' AND $2::text[] IS NOT NULL",
            // Other people's notifications that name this user.
            "UPDATE notification.notifications SET
                title = platformadmin.scrub(to_jsonb(title), $2) #>> '{}',
                body = platformadmin.scrub(to_jsonb(body), $2) #>> '{}',
                data = platformadmin.scrub(data, $2)
             WHERE (title || ' ' || body || ' ' || data::text) ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                AND $1::uuid IS NOT NULL",
            "UPDATE notification.deliveries SET
                subject = platformadmin.scrub(to_jsonb(subject), $2) #>> '{}',
                body_text = platformadmin.scrub(to_jsonb(body_text), $2) #>> '{}',
                body_html = platformadmin.scrub(to_jsonb(body_html), $2) #>> '{}',
                payload = platformadmin.scrub(payload, $2)
             WHERE (subject || ' ' || body_text || ' ' || coalesce(body_html, '') || ' ' || payload::text)
                ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n) AND $1::uuid IS NOT NULL",
        ],
    },
    Source {
        name: "auditTrail",
        export: "SELECT COALESCE(jsonb_agg(jsonb_build_object('id', a.id, 'occurredAt', a.occurred_at,
                'actionType', a.action_type, 'actionObject', a.action_object, 'objectId', a.object_id,
                'face', a.face, 'ipAddress', a.ip_address) ORDER BY a.occurred_at DESC), '[]')
            FROM (SELECT * FROM platformadmin.audit_logs WHERE performed_by = $1
                  ORDER BY occurred_at DESC LIMIT 1000) a WHERE $2::text[] IS NOT NULL",
        erase: &[
            // The rows stay (their existence is the audit trail); the trigger lets an erasure
            // blank the IP and scrub the summaries, nothing else.
            "UPDATE platformadmin.audit_logs SET ip_address = NULL,
                details = platformadmin.scrub(details, $2), changes = platformadmin.scrub(changes, $2)
             WHERE (performed_by = $1 OR object_id = $1) AND (ip_address IS NOT NULL
                OR details::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                OR changes::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n))",
            "UPDATE platformadmin.audit_logs SET details = platformadmin.scrub(details, $2),
                changes = platformadmin.scrub(changes, $2)
             WHERE (details::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                OR changes::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n))
                AND $1::uuid IS NOT NULL",
            "UPDATE events.domain_events SET payload = platformadmin.scrub(payload, $2)
             WHERE payload::text ILIKE ANY (SELECT '%' || n || '%' FROM unnest($2::text[]) n)
                AND $1::uuid IS NOT NULL",
        ],
    },
    Source {
        name: "profile",
        export: "SELECT to_jsonb(u) - 'password_hash' FROM auth.users u WHERE u.id = $1 AND $2::text[] IS NOT NULL",
        erase: &[
            // The email becomes a placeholder, so the address can register again.
            "UPDATE auth.users SET email = 'deleted-' || id || '@deleted.haven.invalid',
                fullname = 'Deleted user', avatar = NULL, bio = NULL, preferred_language = NULL,
                mobile = NULL, mobile_verified = false,
                password_hash = '!erased', email_verified = false, role_id = 'user', is_active = false,
                erased_at = COALESCE(erased_at, now()), record_version = record_version + 1, updated_at = now()
             WHERE id = $1 AND $2::text[] IS NOT NULL",
        ],
    },
];
