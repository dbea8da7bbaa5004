import { LightningElement, api } from 'lwc';
import issues from '@salesforce/apex/RSBridgeSupportNow.issues';
import supportNow from '@salesforce/apex/RSBridgeSupportNow.supportNow';

// "Get Support Now" on a self-service portal's Case page: the customer picks an issue and
// gets a link that starts a support session tied to the Case (rsbridge's actions API,
// through Apex: the browser never sees rsbridge's token).
export default class RsbridgeSupportNow extends LightningElement {
    @api recordId;
    @api startType = 'chat';
    options = [];
    issue;
    details = '';
    url;
    error;
    busy = false;
    requestId;

    async connectedCallback() {
        try {
            const answer = JSON.parse(await issues());
            this.options = (answer.issues || []).map((item) => ({
                label: item.description || item.code_name,
                value: item.code_name
            }));
            this.issue = this.options.length === 1 ? this.options[0].value : undefined;
        } catch (failure) {
            this.error = messageOf(failure);
        }
    }

    get cannotStart() {
        return this.busy || !this.recordId || (this.options.length > 1 && !this.issue);
    }

    setIssue(event) {
        this.issue = event.detail.value;
    }

    setDetails(event) {
        this.details = event.target.value;
    }

    async start() {
        this.busy = true;
        this.error = undefined;
        this.requestId = this.requestId || newRequestId();
        try {
            const answer = JSON.parse(
                await supportNow({
                    caseId: this.recordId,
                    issue: this.issue,
                    startType: this.startType,
                    details: this.details,
                    requestId: this.requestId
                })
            );
            // Only an https link is offered: the answer is data, never script.
            this.url = /^https:\/\//i.test(answer.url || '') ? answer.url : undefined;
            if (!this.url) {
                this.error = 'rsbridge gave no start link.';
            }
        } catch (failure) {
            this.error = messageOf(failure);
        } finally {
            this.busy = false;
        }
    }
}

function newRequestId() {
    return `sf-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
}

function messageOf(failure) {
    return (failure && failure.body && failure.body.message) || 'Support is not available now.';
}
