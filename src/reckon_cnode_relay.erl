%%% @doc The fan-out relay of this node.
%%%
%%% A C emitter that fans an event out to the members of
%%% `{Store, Topic, subscribers}' sends one message per subscriber to nodes
%%% without a relay. To a node that runs this relay it sends one
%%% `{'$reckon_relay', Group, Msg}' per event instead, and the relay sends
%%% `Msg' to every local member of `Group' in the scope: the node decodes
%%% one distribution message per event rather than one per subscriber, and
%%% local sends are cheap. Events from one emitter to one subscriber keep
%%% their order (one emitter uses one path to a node while its relay
%%% lives).
%%%
%%% The relay joins the group `{'$reckon_cnode', relays, 2}' of the scope,
%%% which is how C nodes find it, and sends `Msg' of each
%%% `{'$reckon_relay', Sender, Group, Msg}' on. When it dies, C nodes see it
%%% leave and send directly again; events that were still in its mailbox
%%% are lost with it (the supervisor restarts it).
%%%
%%% Those losses are accounted. `Sender' is a process of the C node (its
%%% pid names the node and its incarnation); for each one the relay counts
%%% the messages it has handled in a table that {@link reckon_cnode_sup}
%%% owns, so the count outlives the relay. A C node that saw the relay die
%%% asks {@link handled/2} (through `rex', which is on every node) and
%%% counts what it sent minus what was handled as `relay_lost'. A message
%%% is counted once delivered: a relay killed between the two makes one
%%% delivered event count as lost, never a lost one count as delivered.
%%% The table keeps the counts of the last 8 relays of this node and at
%%% most 256 senders per relay (a peer can name any
%%% pid as `Sender'); a sender past that bound is not counted, so its C node
%%% overstates, never understates, what was lost, and that is logged.
%%%
%%% The relay also joins `{'$reckon_cnode', relays}' and there takes the
%%% first version's `{'$reckon_relay', Group, Msg}' (uncounted), so that C
%%% nodes of before the accounting keep using it. Only C nodes that know
%%% the accounting look for the new group, so they never send the new
%%% shape to an older relay, which would drop it.
%%%
%%% The relay also watches this node's nodeups: when a node connects here
%%% (a new node joining the cluster through this one), it tells every C
%%% node connected to this node (`{reckon_cnode_cluster, CNode} !
%%% {'$reckon_cnode_nodeup', Node}'), which then asks this node for its
%%% connections at once instead of at its next periodic round, and so
%%% connects to the new node and sees its members as soon as `pg' does.
%%%
%%% It is started by {@link reckon_cnode_sup} unless the application env
%%% `relay' is `false'. With env `mode' set to `relay', the application
%%% runs the scope and the relay only (no C node is attached): that is how
%%% a node that only hosts subscribers takes part.
%%% @end
-module(reckon_cnode_relay).
-behaviour(gen_server).

-export([start_link/1, group/0, new_table/0, handled/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(GROUP, {'$reckon_cnode', relays}).
-define(COUNTED_GROUP, {'$reckon_cnode', relays, 2}).
-define(TABLE, reckon_cnode_relay_handled).
-define(KEEP_RELAYS, 8).
-define(MAX_SENDERS, 256).

-record(state, {scope :: atom(),
                senders = 0 :: non_neg_integer()}).

%% @doc Starts the relay for the `pg' scope `Scope', registered as
%% `reckon_cnode_relay'.
-spec start_link(atom()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Scope) when is_atom(Scope) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Scope, []).

%% @doc The `pg' group relays join for C nodes of before the relay-lost
%% accounting, in the scope of the emitter groups.
-spec group() -> {'$reckon_cnode', relays}.
group() ->
    ?GROUP.

%% @doc Creates the table of handled counts, owned by the caller ({@link
%% reckon_cnode_sup}, which outlives the relay). `ok' if it exists already.
-spec new_table() -> ok.
new_table() ->
    case ets:whereis(?TABLE) of
        undefined ->
            %% public: the relay writes, `rex' (for C nodes) reads
            _ = ets:new(?TABLE, [named_table, public, set]),
            ok;
        _ ->
            ok
    end.

%% @doc How many `{'$reckon_relay', Sender, ...}' messages the relay
%% `Relay' of this node handled, or `unknown' if the table no longer knows
%% that relay (it belonged to an earlier run of the node, or is older than
%% the last 8). The count is handed over once: it is removed, so
%% messages the same sender later sends to the same (dead) relay are
%% counted from 0 by a second question.
-spec handled(pid(), pid()) -> non_neg_integer() | unknown.
handled(Relay, Sender) when is_pid(Relay), is_pid(Sender) ->
    try ets:member(?TABLE, {Relay, relay}) of
        false -> unknown;
        true ->
            case ets:take(?TABLE, {Relay, Sender}) of
                [{_, N}] -> N;
                [] -> 0
            end
    catch
        error:badarg -> unknown
    end;
handled(_Relay, _Sender) ->
    unknown.

%% @private
-spec init(atom()) -> {ok, #state{}}.
init(Scope) ->
    %% A burst of relayed events must not make every garbage collection of
    %% the relay copy its whole mailbox.
    process_flag(message_queue_data, off_heap),
    %% Started outside the supervisor (a benchmark): the table is then the
    %% relay's own and dies with it, and C nodes find its counts unknown.
    ok = new_table(),
    ok = forget_old_relays(),
    true = ets:insert(?TABLE, {{self(), relay}, erlang:unique_integer([monotonic])}),
    %% The counted group first: a C node that sees the relay in the old one
    %% has seen it in the new one too (pg tells a peer in order).
    ok = pg:join(Scope, ?COUNTED_GROUP, self()),
    ok = pg:join(Scope, ?GROUP, self()),
    ok = net_kernel:monitor_nodes(true),
    {ok, #state{scope = Scope}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, badarg}, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
%% Only the shapes C emitters send: a peer cannot make the relay post
%% anything else, or to any other group. Counted after the delivery (see
%% the module doc).
handle_info({'$reckon_relay', Sender, {Store, Topic, subscribers} = Group,
             {events, Events} = Msg}, #state{scope = Scope} = State)
  when is_pid(Sender), is_atom(Store), is_binary(Topic), is_list(Events) ->
    deliver(pg:get_local_members(Scope, Group), Msg),
    {noreply, count(Sender, State)};
handle_info({'$reckon_relay', {Store, Topic, subscribers} = Group, {events, Events} = Msg},
            #state{scope = Scope} = State)
  when is_atom(Store), is_binary(Topic), is_list(Events) ->
    deliver(pg:get_local_members(Scope, Group), Msg),
    {noreply, State};
handle_info({nodeup, Node}, State) ->
    %% C nodes are hidden; a hidden node that is not one has no process of
    %% that name, and the message is dropped there
    _ = [erlang:send({reckon_cnode_cluster, H}, {'$reckon_cnode_nodeup', Node}, [noconnect])
         || H <- nodes(hidden)],
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

count(Sender, #state{senders = Senders} = State) ->
    Key = {self(), Sender},
    try ets:update_counter(?TABLE, Key, 1) of
        _ -> State
    catch
        error:badarg when Senders < ?MAX_SENDERS ->
            true = ets:insert(?TABLE, {Key, 1}),
            State#state{senders = Senders + 1};
        error:badarg when Senders =:= ?MAX_SENDERS ->
            logger:warning("reckon_cnode relay: more than ~b senders; messages from ~p and "
                           "further new senders are not counted (their C nodes count them as "
                           "relay-lost if this relay dies)", [?MAX_SENDERS, node(Sender)]),
            State#state{senders = Senders + 1};
        error:badarg ->
            State
    end.

%% Only the last ?KEEP_RELAYS relays' counts are kept (this one included):
%% a C node asks as soon as it sees a relay die, so older ones were asked
%% about long ago, or never will be.
forget_old_relays() ->
    Relays = lists:sort(ets:match(?TABLE, {{'$2', relay}, '$1'})),
    Old = lists:sublist(Relays, max(0, length(Relays) - (?KEEP_RELAYS - 1))),
    lists:foreach(fun([_, Pid]) -> ets:match_delete(?TABLE, {{Pid, '_'}, '_'}) end, Old).

deliver([Pid | Rest], Msg) ->
    Pid ! Msg,
    deliver(Rest, Msg);
deliver([], _Msg) ->
    ok.
