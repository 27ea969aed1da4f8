/*
 * iot_guard: a mosquitto 2.0 plugin that binds client ids to usernames and keeps devices' SUBSCRIBEs
 * inside their own topics. The password file and the ACL file stay in charge of everything else
 * (this plugin answers "defer" whenever its rules allow a request).
 *
 * - CONNECT: a device (a username not starting with "_") must use its username as client id; a
 *   service account "_name" must use a client id starting with "_name-" (ingestion replicas share
 *   one account, so their ids differ, and a survivor may resume a dead replica's session; device
 *   ids never contain "_", so no device id can ever equal a service's client id). Any
 *   other client id is refused before mosquitto looks for a connected client of that id, so the
 *   owner of the id is not disconnected and its session, queued messages included, is kept.
 * - SUBSCRIBE: a device may subscribe only to filters under "devices/<username>/", so never to a
 *   "$share/..." filter: mosquitto 2.0.11 asks plugins about every SUBSCRIBE with the whole filter
 *   ("$share/<group>/<topic>"), while its ACL file grants every SUBSCRIBE and filters on delivery,
 *   which let a device join the ingestion group and have its share dropped (refused here: SUBACK 0x87).
 */
#include <stdbool.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id;

static bool is_service(const char *username)
{
	return username[0] == '_';
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);
	const char *username = ed->username;
	size_t name_len;
	(void)event;
	(void)userdata;

	if(username == NULL || client_id == NULL){
		return MOSQ_ERR_PLUGIN_DEFER; /* anonymous: the broker refuses it (allow_anonymous false) */
	}
	if(is_service(username)){
		name_len = strlen(username);
		if(name_len > 1 && strncmp(client_id, username, name_len) == 0 && client_id[name_len] == '-'
				&& client_id[name_len + 1] != '\0'){
			return MOSQ_ERR_PLUGIN_DEFER;
		}
	}else if(strcmp(client_id, username) == 0){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_guard: refused client id '%.80s' for user '%.80s'",
			client_id, username);
	return MOSQ_ERR_AUTH;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);
	size_t name_len;
	(void)event;
	(void)userdata;

	if(ed->access != MOSQ_ACL_SUBSCRIBE || username == NULL || is_service(username)){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	name_len = strlen(username);
	if(strncmp(ed->topic, "devices/", 8) == 0 && strncmp(ed->topic + 8, username, name_len) == 0
			&& ed->topic[8 + name_len] == '/'){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "iot_guard: refused subscription of '%.80s' to '%.200s'",
			username, ed->topic);
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options,
		int option_count)
{
	int rc;
	(void)userdata;
	(void)options;
	(void)option_count;

	plugin_id = identifier;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc != MOSQ_ERR_SUCCESS){
		return rc;
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
}
