"""ServiceNow: the connector, its REST client and its session tables.

:class:`ServiceNowConnector` (``connector``) is one class made of mixins, one module per
job, each layer using the ones below it:

* ``settings`` -- the declared settings, their parsing into options, the session values
  a field mapping can name;
* ``tickets`` -- find a ticket by sys_id or number, auto-create one, look up the records
  a mapping or reference names; declares the parts every job shares (client, schema,
  options), which ``connector`` builds;
* ``writes`` -- what imports and surveys share: Batch API calls, rows already present,
  the task's journal stream, the session row's references and lock;
* ``session_import`` -- a session into records, journal entries and an attachment;
* ``surveys`` -- exit surveys and the actions' work notes;
* ``actions`` -- what the technician and customer actions ask: ticket context, user
  mapping, configuration items, custom links;
* ``connector`` -- the class itself: settings, construction, connection test.

Below them: ``client`` (HTTP: Table, Batch, Attachment APIs and auth), ``records`` (the
rows of a session) and ``schema`` (table and column names).
"""

from rsbridge.connectors.servicenow.connector import ServiceNowConnector

__all__ = ["ServiceNowConnector"]
